"""Idempotency keys for every retryable write, unique per merchant in the database."""
from django.db import models


class IdempotencyRecord(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=40)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical request")
    result = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "key"], name="idempotency_key_unique_per_merchant")]

    def __str__(self):
        return f"{self.operation}:{self.key}"
