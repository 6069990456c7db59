"""Passes: the identifiers a cashier scans. Signing keys (`keys`), rotating signed QR tokens (`tokens`)
and the images drawn from them (`images`)."""
