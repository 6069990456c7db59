"""The transactional outbox: events appended in the same transaction as the change they describe.

Integrations (CRM, pass updates, engagement) read these in id order and never hear from the core
any other way. Rows are immutable; delivery state lives with each consumer.
"""
from django.db import models
from django.utils import timezone


class DomainEvent(models.Model):
    SCHEMA_VERSION = 1

    merchant = models.ForeignKey("merchants.Merchant", null=True, on_delete=models.PROTECT, related_name="+")
    # Plain ids, not foreign keys: an event outlives what it describes and must never cascade.
    customer_id = models.BigIntegerField(null=True, db_index=True)
    card_id = models.BigIntegerField(null=True)
    event_type = models.CharField(max_length=64, help_text="Dotted name, e.g. wallet.points.changed")
    schema_version = models.PositiveSmallIntegerField(default=SCHEMA_VERSION)
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    # When the row was written (occurred_at may be a POS's original time): consumers that scan the
    # outbox by id wait for a row's transaction to have surely committed before moving past it.
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["merchant", "id"])]

    def __str__(self):
        return f"{self.event_type} #{self.pk}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Domain events are immutable.")
        super().save(*args, **kwargs)
