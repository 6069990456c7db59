"""Shared kernel with no business rules: the user model, error types, plug-in and tenancy helpers."""
