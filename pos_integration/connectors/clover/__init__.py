"""The Clover POS connector."""
