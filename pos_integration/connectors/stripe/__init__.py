"""The Stripe POS connector."""
