"""Merchant-facing reads for the customer API: the directory of merchants and stores."""
