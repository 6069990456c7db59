"""CRM connections and the delivery of outbox events to them.

One `CrmDelivery` per (connection, outbox event): its status, attempts, when to try next and the
last error. The outbox (`wallet.DomainEvent`) is never changed; delivery state lives here.
"""
import uuid

from django.db import models

from core.history import audit_history


class CrmConnection(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="crm_connections")
    connector = models.CharField(max_length=64, help_text="The connector's key, e.g. hubspot")
    name = models.CharField(max_length=120)
    config = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True, editable=False)
    field_mapping = models.JSONField(default=dict, blank=True, help_text="Our field -> the CRM's property name")
    event_types = models.JSONField(
        default=list, blank=True, help_text="Outbox event types to send; empty means every type"
    )
    is_paused = models.BooleanField(default=False, help_text="Paused: events wait, nothing is sent")
    # 16 tries of full-jitter backoff (5 s doubling, capped at an hour) ride out an outage of hours.
    max_attempts = models.PositiveSmallIntegerField(default=16, help_text="Tries before an event is dead-lettered")
    # Every outbox event up to this id has been considered for this connection (see crm_sync.fanout).
    scanned_event_id = models.BigIntegerField(default=0, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Who changed mapping, event types, pausing and config; sealed secrets and bookkeeping stay out.
    history = audit_history(
        excluded_fields=["secrets_encrypted", "scanned_event_id", "last_success_at", "last_error"]
    )

    class Meta:
        ordering = ["merchant", "name"]

    def __str__(self):
        return f"{self.name} ({self.connector})"


class CrmDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    connection = models.ForeignKey(CrmConnection, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("wallet.DomainEvent", on_delete=models.PROTECT, related_name="+")
    customer_id = models.BigIntegerField(null=True, help_text="Events of one customer go out in order")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "CRM deliveries"
        ordering = ["event_id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "event"], name="crm_delivery_once_per_event"),
        ]
        indexes = [models.Index(fields=["connection", "status", "event"], name="crm_delivery_queue")]

    def __str__(self):
        return f"Event {self.event_id} to {self.connection_id} ({self.status})"
