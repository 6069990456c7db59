"""The Generic POS connector."""
