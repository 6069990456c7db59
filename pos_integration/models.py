"""POS devices: a till, tablet or browser page that calls the POS API with its own key."""
import uuid

from django.db import models

from core.history import audit_history


class PosDevice(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="pos_devices")
    store = models.ForeignKey("merchants.Store", on_delete=models.CASCADE, related_name="pos_devices")
    name = models.CharField(max_length=120)
    # The key's public prefix finds the row; only a slow hash of the whole key is stored.
    key_prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=255)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    history = audit_history(excluded_fields=["key_hash", "last_used_at"])

    class Meta:
        ordering = ["merchant", "name"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"


class CounterAction(models.Model):
    """Who did a write at the counter: the device, and the cashier who entered a PIN (if any).

    Written in the same transaction as the ledger change it describes, and only by the first run of
    an idempotent request (a replay adds nothing). The core records points; this records the till.
    """

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        OFFLINE_PURCHASE = "offline_purchase", "Purchase uploaded after being offline"
        REDEEM = "redeem", "Reward redeemed"
        COUPON_USE = "coupon_use", "Coupon used"
        REFUND = "refund", "Refund"
        ADJUST = "adjust", "Manual adjustment"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    device = models.ForeignKey(PosDevice, on_delete=models.PROTECT, related_name="actions")
    cashier = models.ForeignKey(
        "merchants.StaffMember", null=True, blank=True, on_delete=models.PROTECT, related_name="counter_actions"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    card = models.ForeignKey("wallet.Card", on_delete=models.PROTECT, related_name="+")
    purchase = models.ForeignKey("wallet.Purchase", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    redemption = models.ForeignKey(
        "wallet.Redemption", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ledger_entry = models.ForeignKey(
        "wallet.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="counter_actions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["merchant", "created_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.device}"


class SpentPassToken(models.Model):
    """A pass token used to redeem: within its time window it cannot be used to redeem again."""

    card = models.ForeignKey("wallet.Card", on_delete=models.CASCADE, related_name="+")
    key_id = models.CharField(max_length=16)
    step = models.BigIntegerField()
    spent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["card", "key_id", "step"], name="spent_pass_token_unique"),
        ]

    def __str__(self):
        return f"Token {self.key_id}/{self.step} of card {self.card_id}"


class PosConnection(models.Model):
    """One merchant's link to one POS system through a connector, with its own config and secrets.

    The id is random (a UUID) because it is in the webhook URL the vendor calls.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="pos_connections")
    store = models.ForeignKey(
        "merchants.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Where this POS's sales happen (optional)",
    )
    connector = models.CharField(max_length=64, help_text="The connector's key, e.g. square")
    name = models.CharField(max_length=120)
    config = models.JSONField(default=dict, blank=True)
    # Encrypted at rest (see pos_integration.secrets); never shown again in full once saved.
    secrets_encrypted = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    poll_cursor = models.JSONField(default=dict, blank=True, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_delivery_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Who changed the config and when; sealed secrets and polling bookkeeping stay out of it.
    history = audit_history(
        excluded_fields=["secrets_encrypted", "poll_cursor", "last_polled_at", "last_delivery_at"]
    )

    class Meta:
        ordering = ["merchant", "name"]

    def __str__(self):
        return f"{self.name} ({self.connector})"


class WebhookDelivery(models.Model):
    """Every request that reached a connection's webhook URL, kept as received for audit and replay.

    A vendor event (Stripe `evt_...`, Square `event_id`, Shopify `X-Shopify-Event-Id`, a standard
    webhook's `webhook-id`) is owned by one delivery per connection, enforced by the database: a retry
    or a twin sent at the same instant is still kept, but as a duplicate of that one, and not processed
    (an id a connector learns only when parsing marks the repeat after its idempotent processing).
    Deliveries with no event id (rejected ones, vendors that send none) are not constrained.
    """

    class Status(models.TextChoices):
        REJECTED = "rejected", "Rejected (not verified)"
        RECEIVED = "received", "Verified, waiting"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed (can be replayed)"

    connection = models.ForeignKey(PosConnection, on_delete=models.CASCADE, related_name="deliveries")
    received_at = models.DateTimeField(auto_now_add=True)
    headers = models.JSONField(default=dict, help_text="Request headers, secret-bearing ones masked")
    body = models.BinaryField()
    status = models.CharField(max_length=10, choices=Status.choices)
    rejection_reason = models.CharField(max_length=120, blank=True)
    vendor_event_id = models.CharField(max_length=255, blank=True)
    outcome = models.JSONField(default=list, blank=True, help_text="What each event in it did")
    error = models.TextField(blank=True)
    # The failure's error code, for what must find these again: `earning_paused` ones are replayed
    # when the merchant's subscription is paid again (processing.replay_held_deliveries).
    failure_code = models.CharField(max_length=40, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="duplicates", editable=False,
        help_text="The delivery that owns this vendor event; this one is a repeat of it",
    )

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        indexes = [models.Index(fields=["connection", "vendor_event_id"]), models.Index(fields=["status"])]
        constraints = [
            # Two deliveries of one event racing through intake cannot both be processed: the second
            # insert fails here, whatever the timing, and the view records it as a duplicate instead.
            models.UniqueConstraint(
                fields=["connection", "vendor_event_id"],
                condition=~models.Q(vendor_event_id="") & models.Q(duplicate_of__isnull=True),
                name="pos_webhook_delivery_event_unique",
            ),
        ]

    def __str__(self):
        return f"Delivery {self.pk} to {self.connection_id} ({self.status})"


class PosCustomerLink(models.Model):
    """A POS's own customer id known to belong to a card, so later sales by that customer match."""

    connection = models.ForeignKey(PosConnection, on_delete=models.CASCADE, related_name="customer_links")
    vendor_customer_id = models.CharField(max_length=255)
    card = models.ForeignKey("wallet.Card", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "vendor_customer_id"], name="pos_customer_link_unique"),
        ]

    def __str__(self):
        return f"{self.vendor_customer_id} → card {self.card_id}"
