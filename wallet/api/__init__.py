"""The customer API under /api/v1/, used by the wallet mobile frontend (JWT auth)."""
