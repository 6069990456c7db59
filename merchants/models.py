"""The tenant and its loyalty rules. Every merchant-owned row carries a `merchant` key."""
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

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
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

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

    class Meta:
        ordering = ["merchant", "user__first_name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["merchant", "user"], name="staff_member_unique")]


    def __str__(self):
        return f"{self.user} — {self.get_role_display()} at {self.merchant}"

    @property
    def display_name(self) -> str:
        """What the counter shows: a first name where there is one."""
        return self.user.first_name or self.user.get_username()

