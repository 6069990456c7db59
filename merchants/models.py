"""The tenant and its loyalty rules. Every merchant-owned row carries a `merchant` key."""
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.history import audit_history
from core.money import validate_currency_code, validate_time_zone
from merchants.opening_hours import validate_opening_hours


class Merchant(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    currency = models.CharField(max_length=3, validators=[validate_currency_code], help_text="ISO 4217")
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone], help_text="IANA, e.g. Europe/Paris")
    brand_color = models.CharField(max_length=7, default="#1F2937", help_text="Hex colour for passes")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = audit_history()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Store(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="stores")
    name = models.CharField(max_length=120)
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True,
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))],
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True,
        validators=[MinValueValidator(Decimal("-180")), MaxValueValidator(Decimal("180"))],
    )
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    opening_hours = models.JSONField(
        default=dict, blank=True, validators=[validate_opening_hours],
        help_text='Local times per weekday, e.g. {"mon": [["08:00", "12:30"], ["14:00", "19:00"]], "sun": []}. '
        "A period may end after midnight (22:00-02:00). A day left out is closed.",
    )
    is_active = models.BooleanField(default=True)
    history = audit_history()

    class Meta:
        ordering = ["merchant", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True) | models.Q(latitude__gte=-90, latitude__lte=90),
                name="store_latitude_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__isnull=True) | models.Q(longitude__gte=-180, longitude__lte=180),
                name="store_longitude_in_range",
            ),
        ]

    def __str__(self):
        return f"{self.merchant.name} — {self.name}"


class Program(models.Model):
    """A merchant's loyalty program: how points are earned, kept, expired and reversed."""

    class Rounding(models.TextChoices):
        FLOOR = "floor", "Round down"
        NEAREST = "nearest", "Round to nearest (half up)"
        CEILING = "ceiling", "Round up"

    class RefundPolicy(models.TextChoices):
        ALLOW_NEGATIVE = "allow_negative", "Reverse all earned points, even below zero"
        FLOOR_AT_ZERO = "floor_at_zero", "Reverse earned points down to a zero balance"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="programs")
    name = models.CharField(max_length=120)
    points_per_currency_unit = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Points earned per whole unit of the merchant's currency (e.g. per euro), before tier multipliers.",
    )
    rounding = models.CharField(max_length=10, choices=Rounding.choices, default=Rounding.FLOOR)
    welcome_bonus = models.PositiveIntegerField(default=0)
    points_validity_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Points expire at the end of the merchant's local day this many days after they were earned. "
        "Empty: points never expire.",
    )
    refund_policy = models.CharField(max_length=20, choices=RefundPolicy.choices, default=RefundPolicy.ALLOW_NEGATIVE)
    token_period_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5)],
        help_text="A pass's QR token changes this often, so a screenshot goes stale.",
    )
    token_drift_steps = models.PositiveSmallIntegerField(
        default=1, help_text="How many periods either side a token is still accepted (clock drift, slow scans)."
    )
    point_value = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="What one point is worth when redeemed, in minor units of the merchant's currency "
        "(1 = one cent per point). The liability report values outstanding points at this rate.",
    )
    expiry_warning_days = models.PositiveIntegerField(
        null=True, blank=True, default=14,
        help_text="Warn a customer this many days before their points expire. Empty: no warning.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = audit_history()

    class Meta:
        ordering = ["merchant", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points_per_currency_unit__gte=0), name="program_earn_rate_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(points_validity_days__isnull=True) | models.Q(points_validity_days__gt=0),
                name="program_validity_positive",
            ),
        ]

    def __str__(self):
        return f"{self.merchant.name}: {self.name}"


class Tier(models.Model):
    """A status level reached by lifetime points; its multiplier applies to earning."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=60)
    threshold = models.PositiveIntegerField(help_text="Lifetime points needed to reach this tier")
    multiplier = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(Decimal("1"))]
    )
    history = audit_history()

    class Meta:
        ordering = ["program", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["program", "threshold"], name="tier_threshold_unique_per_program"),
            models.CheckConstraint(condition=models.Q(multiplier__gte=1), name="tier_multiplier_at_least_one"),
        ]

    def __str__(self):
        return f"{self.name} ({self.threshold}+)"


class Reward(models.Model):
    class Kind(models.TextChoices):
        FREE_ITEM = "free_item", "Free item"
        AMOUNT_OFF = "amount_off", "Amount off (minor units)"
        PERCENT_OFF = "percent_off", "Percent off"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rewards")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FREE_ITEM)
    value = models.PositiveIntegerField(default=0, help_text="Minor units for amount off, percent for percent off")
    points_cost = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    coupon_valid_days = models.PositiveIntegerField(default=30, help_text="How long a redeemed coupon stays usable")
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Remaining stock; empty means unlimited")
    is_active = models.BooleanField(default=True)
    history = audit_history()

    class Meta:
        ordering = ["program", "points_cost"]
        constraints = [
            models.CheckConstraint(condition=models.Q(points_cost__gt=0), name="reward_cost_positive"),
            models.CheckConstraint(
                condition=~models.Q(kind="percent_off") | models.Q(value__lte=100), name="reward_percent_at_most_100"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.points_cost} pts)"


class StaffMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        CASHIER = "cashier", "Cashier"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    # The counter PIN (argon2 via passlib). A PIN has few values, so the attempt limit below is what
    # really protects it: after too many wrong tries the cashier is locked until `pin_locked_until`.
    pin_hash = models.CharField(max_length=255, blank=True, editable=False)
    failed_pin_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    pin_locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Who was given which role, and when; the PIN hash and its counters stay out of the history.
    history = audit_history(excluded_fields=["pin_hash", "failed_pin_attempts", "pin_locked_until"])

    class Meta:
        ordering = ["merchant", "user__first_name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["merchant", "user"], name="staff_member_unique")]


    def __str__(self):
        return f"{self.user} — {self.get_role_display()} at {self.merchant}"

    @property
    def display_name(self) -> str:
        """What the counter shows: a first name where there is one."""
        return self.user.first_name or self.user.get_username()



# Billing: Tessera bills merchants through Stripe ---------------------------------------------------

class BillingPlan(models.Model):
    """A plan a merchant can subscribe to: one recurring price in Stripe."""

    name = models.CharField(max_length=80)
    stripe_price_id = models.CharField(max_length=255, unique=True, help_text="Stripe price id, price_...")
    amount = models.PositiveIntegerField(help_text="Price per interval in minor units, as shown to merchants")
    currency = models.CharField(max_length=3, validators=[validate_currency_code])
    interval = models.CharField(max_length=10, choices=[("month", "Monthly"), ("year", "Yearly")], default="month")
    description = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True, help_text="Offered to merchants who subscribe now")

    class Meta:
        ordering = ["amount", "name"]

    def __str__(self):
        return self.name


class MerchantSubscription(models.Model):
    """A merchant's Stripe customer and subscription, kept current by Stripe's webhooks."""

    class Status(models.TextChoices):
        NONE = "none", "Not subscribed"
        INCOMPLETE = "incomplete", "Incomplete (first payment pending)"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        UNPAID = "unpaid", "Unpaid"
        CANCELED = "canceled", "Cancelled"
        PAUSED = "paused", "Paused"

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(BillingPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NONE)
    status_since = models.DateTimeField(null=True, blank=True, help_text="When the status last changed")
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # Stripe does not promise delivery order: an event older than the last applied one is ignored.
    last_event_created = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_customer_id"], condition=~models.Q(stripe_customer_id=""),
                name="subscription_stripe_customer_unique",
            ),
        ]

    def __str__(self):
        return f"{self.merchant}: {self.get_status_display()}"


class StripeEvent(models.Model):
    """Every Stripe billing event received, once: the unique event id makes a redelivery a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="When Stripe created the event")
    received_at = models.DateTimeField(auto_now_add=True)
    merchant = models.ForeignKey(Merchant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class RulesVersion(models.Model):
    """A number per merchant, replaced by a new random one in the same transaction as any change to what
    the counter caches per process (offers, audiences, tiers, signing keys; see merchants.rules_cache).
    Kept out of Merchant so that saving a merchant from a stale form can never write an old number back."""

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.merchant_id}: {self.version}"
