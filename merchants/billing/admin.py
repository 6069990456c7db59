"""Billing admin (being built)."""
