"""Customers, their one wallet, and the loyalty cards in it."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from core.money import validate_time_zone


class Customer(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="customer")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    locale = models.CharField(max_length=15, default="en")
    home_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    home_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    # Where the wallet app last saw the customer (sent with an offers request), for "near a store" audiences.
    last_seen_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    last_seen_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Month and day only: a birthday offer needs no year, and no year is kept.
    birth_month = models.PositiveSmallIntegerField(null=True, blank=True)
    birth_day = models.PositiveSmallIntegerField(null=True, blank=True)
    # Communication: per-merchant, per-channel opt-ins live in CommunicationPreference; these apply to all.
    communication_paused = models.BooleanField(default=False, help_text="Pause all: no merchant may contact")
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="Local time in the customer's zone")
    quiet_hours_end = models.TimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True, help_text="Personal data erased on request")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(home_latitude__isnull=True)
                | models.Q(home_latitude__gte=-90, home_latitude__lte=90),
                name="customer_home_latitude_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(home_longitude__isnull=True)
                | models.Q(home_longitude__gte=-180, home_longitude__lte=180),
                name="customer_home_longitude_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(last_seen_latitude__isnull=True, last_seen_longitude__isnull=True)
                | models.Q(last_seen_latitude__gte=-90, last_seen_latitude__lte=90,
                           last_seen_longitude__gte=-180, last_seen_longitude__lte=180),
                name="customer_last_seen_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(birth_month__isnull=True, birth_day__isnull=True)
                | models.Q(birth_month__gte=1, birth_month__lte=12, birth_day__gte=1, birth_day__lte=31),
                name="customer_birthday_month_and_day",
            ),
            models.CheckConstraint(
                condition=models.Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | models.Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="customer_quiet_hours_both_or_neither",
            ),
        ]

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
    # Passes: when what a pass shows last changed (balance, tier, status, message), for Apple's
    # "updated since" and Last-Modified; a message shown on the pass; the card page's short URL.
    pass_updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    pass_message = models.CharField(max_length=200, blank=True)
    page_slug = models.CharField(max_length=32, unique=True, null=True, blank=True)

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
