"""The Square POS connector."""
