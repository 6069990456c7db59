"""Customers, their one wallet, and the loyalty cards in it."""
from django.conf import settings
from django.db import models

from core.money import validate_time_zone


class Customer(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="customer")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    locale = models.CharField(max_length=15, default="en")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Customer {self.pk} ({self.user})"


class Wallet(models.Model):
    """Exactly one per customer, created with the customer (enforced by the one-to-one key)."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="wallet")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Wallet of {self.customer}"


class Card(models.Model):
    """A customer's membership in one program. `balance` is a cache of the sum of its ledger entries."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="cards")
    program = models.ForeignKey("merchants.Program", on_delete=models.PROTECT, related_name="cards")
    # Denormalised from program.merchant so every merchant-scoped query is one indexed filter.
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="cards")
    number = models.CharField(max_length=19, unique=True, help_text="Public card number with a Luhn check digit")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    balance = models.BigIntegerField(default=0)
    lifetime_points = models.BigIntegerField(default=0, help_text="Points ever earned, less reversals; sets the tier")
    tier = models.ForeignKey("merchants.Tier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "program"], name="card_one_per_wallet_and_program"),
            models.CheckConstraint(condition=models.Q(lifetime_points__gte=0), name="card_lifetime_not_negative"),
        ]
        indexes = [models.Index(fields=["merchant", "status"])]

    def __str__(self):
        return self.number

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
