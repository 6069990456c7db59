"""Purchases that earn points and redemptions that spend them."""
from django.db import models


class Purchase(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="purchases")
    store = models.ForeignKey("merchants.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey("wallet.Card", null=True, blank=True, on_delete=models.PROTECT, related_name="purchases")
    external_id = models.CharField(max_length=128, help_text="The POS's own id for the sale")
    amount = models.BigIntegerField(help_text="Minor units (cents)")
    currency = models.CharField(max_length=3)
    items = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETED)
    refunded_amount = models.BigIntegerField(default=0)
    points_earned = models.BigIntegerField(default=0)
    points_reversed = models.BigIntegerField(default=0)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    # A sale no card matched (a POS webhook without a known customer) is kept with card empty; the
    # customer claims it later with the code printed on the receipt, once.
    receipt_code = models.CharField(max_length=64, blank=True, help_text="The code printed on the receipt")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["merchant", "receipt_code"], name="purchase_receipt_code"),
            models.Index(fields=["merchant", "occurred_at"], name="purchase_merchant_period"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "external_id"], name="purchase_external_id_unique"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0, refunded_amount__lte=models.F("amount")),
                name="purchase_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=models.Q(points_reversed__gte=0, points_reversed__lte=models.F("points_earned")),
                name="purchase_reversal_within_earned",
            ),
        ]

    def __str__(self):
        return f"{self.external_id} ({self.amount} {self.currency})"


class Redemption(models.Model):
    """Points spent on a reward. The coupon code is single-use: a cashier marks it used once."""

    class Status(models.TextChoices):
        ISSUED = "issued", "Issued (coupon valid)"
        USED = "used", "Used"
        CANCELLED = "cancelled", "Cancelled (points returned)"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="redemptions")
    card = models.ForeignKey("wallet.Card", on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey("merchants.Reward", on_delete=models.PROTECT, related_name="redemptions")
    points = models.BigIntegerField()
    coupon_code = models.CharField(max_length=16, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ISSUED)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The sale the coupon was used on (its POS id), when the till said: refunding that sale gives the
    # points spent back, pro rata, once (odoo #212922 deducted them again instead).
    sale_external_id = models.CharField(
        max_length=128, blank=True, default="", help_text="The POS's id of the sale this reward was used on"
    )
    points_returned = models.BigIntegerField(default=0, help_text="Points given back by refunds of that sale")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["merchant", "sale_external_id"], condition=~models.Q(sale_external_id=""),
                         name="redemption_sale"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(points__gt=0), name="redemption_points_positive"),
            models.CheckConstraint(
                condition=models.Q(points_returned__gte=0, points_returned__lte=models.F("points")),
                name="redemption_returned_within_points",
            ),
        ]

    def __str__(self):
        return f"{self.coupon_code} ({self.reward})"
