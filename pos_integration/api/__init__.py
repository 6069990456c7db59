"""The POS API under /api/pos/v1/, called by devices with their own key."""
