"""The Shopify POS connector."""
