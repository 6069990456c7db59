"""Engagement data: what a merchant offers (Offer), to whom (Audience), how it is announced (Campaign),
each recipient's planned message (Message) and every send decision (SendLog).

Times of day on offers are the store's local time; times of day on campaigns are the recipient's own
local time. Datetimes are stored in UTC.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from wallet.models import CommunicationPreference

Channel = CommunicationPreference.Channel


class MerchantEngagement(models.Model):
    """A merchant's limits on how often one customer hears from it. No row: the defaults."""

    DEFAULT_DAILY_CAP = 1
    DEFAULT_WEEKLY_CAP = 3

    merchant = models.OneToOneField("merchants.Merchant", on_delete=models.CASCADE, related_name="engagement")
    daily_cap = models.PositiveSmallIntegerField(
        default=DEFAULT_DAILY_CAP, validators=[MinValueValidator(1)],
        help_text="Most messages one customer gets from this merchant per local day (all channels of one "
                  "message count once).",
    )
    weekly_cap = models.PositiveSmallIntegerField(
        default=DEFAULT_WEEKLY_CAP, validators=[MinValueValidator(1)],
        help_text="Most messages one customer gets from this merchant in any 7 days.",
    )
    sender_name = models.CharField(max_length=80, blank=True,
                                   help_text="Shown as the sender; the merchant's name if empty")

    def __str__(self):
        return f"Engagement limits of {self.merchant_id}"


class Audience(models.Model):
    """Who an offer or campaign is for: members of the merchant's programs matching every rule set
    here (an empty rule does not filter). Evaluated by engagement.audiences."""

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="audiences")
    name = models.CharField(max_length=120)
    tiers = models.ManyToManyField("merchants.Tier", blank=True, related_name="+", help_text="Any of these tiers")
    min_balance = models.PositiveIntegerField(null=True, blank=True)
    max_balance = models.PositiveIntegerField(null=True, blank=True)
    can_redeem = models.BooleanField(default=False, help_text="Balance reaches at least one active reward")
    near_reward_points = models.PositiveIntegerField(
        null=True, blank=True, help_text="Within this many points of an active reward they cannot yet afford"
    )
    min_days_since_visit = models.PositiveIntegerField(null=True, blank=True, help_text="Win back: away at least")
    max_days_since_visit = models.PositiveIntegerField(null=True, blank=True, help_text="Visited within")
    min_visits = models.PositiveIntegerField(null=True, blank=True, help_text="At least this many purchases ...")
    visits_window_days = models.PositiveIntegerField(default=90, validators=[MinValueValidator(1)],
                                                     help_text="... in this many days")
    birthday_this_month = models.BooleanField(default=False,
                                              help_text="Birthday in the current month (their time zone)")
    purchase_categories = models.JSONField(
        default=list, blank=True, help_text='Bought a line item of any of these categories, e.g. ["pastry"]'
    )
    near_store = models.ForeignKey("merchants.Store", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", help_text="Home or last-seen location near this store ...")
    radius_km = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                    validators=[MinValueValidator(0)], help_text="... within this radius")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(near_store__isnull=True, radius_km__isnull=True)
                | Q(near_store__isnull=False, radius_km__isnull=False),
                name="audience_store_and_radius_together",
            ),
        ]

    def __str__(self):
        return self.name


class Offer(models.Model):
    """Something a merchant gives: a points multiplier or bonus applied at the counter, an extra reward,
    or a discount coupon, valid in a period, at some stores, on some weekdays and hours (store time)."""

    class Kind(models.TextChoices):
        MULTIPLIER = "points_multiplier", "Points multiplier"
        BONUS_POINTS = "bonus_points", "Bonus points"
        EXTRA_REWARD = "extra_reward", "Extra reward"
        DISCOUNT = "discount_coupon", "Discount coupon"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="offers")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=1000)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    multiplier = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True,
                                     validators=[MinValueValidator(1), MaxValueValidator(10)],
                                     help_text="Points multiplier, e.g. 2 for double points")
    bonus_points = models.PositiveIntegerField(null=True, blank=True, help_text="Points added to a purchase")
    reward = models.ForeignKey("merchants.Reward", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    discount_text = models.CharField(max_length=120, blank=True,
                                     help_text='What the coupon gives, e.g. "15% off pastries"')
    coupon_code = models.CharField(max_length=32, blank=True)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    stores = models.ManyToManyField("merchants.Store", blank=True, related_name="+",
                                    help_text="Empty: every store of the merchant")
    weekdays = models.JSONField(default=list, blank=True, help_text="0 = Monday ... 6 = Sunday; empty: every day")
    daily_start = models.TimeField(null=True, blank=True, help_text="Store local time; may end after midnight")
    daily_end = models.TimeField(null=True, blank=True)
    audience = models.ForeignKey(Audience, null=True, blank=True, on_delete=models.PROTECT, related_name="offers",
                                 help_text="Empty: every member")
    is_welcome = models.BooleanField(default=False, help_text="Given to every new member on enrolment")
    welcome_valid_days = models.PositiveSmallIntegerField(default=30, validators=[MinValueValidator(1)],
                                                          help_text="How long a new member may use a welcome offer")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_from", "title"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                                   name="offer_valid_until_after_from"),
            models.CheckConstraint(condition=Q(daily_start__isnull=True, daily_end__isnull=True)
                                   | Q(daily_start__isnull=False, daily_end__isnull=False),
                                   name="offer_daily_window_both_or_neither"),
            models.CheckConstraint(condition=~Q(kind="points_multiplier") | Q(multiplier__isnull=False),
                                   name="offer_multiplier_has_multiplier"),
            models.CheckConstraint(condition=~Q(kind="bonus_points") | Q(bonus_points__gt=0),
                                   name="offer_bonus_has_points"),
            models.CheckConstraint(condition=~Q(kind="extra_reward") | Q(reward__isnull=False),
                                   name="offer_extra_reward_has_reward"),
        ]
        indexes = [models.Index(fields=["merchant", "is_active", "valid_from"], name="offer_merchant_active")]

    def __str__(self):
        return self.title


class Campaign(models.Model):
    """An offer announced to an audience on chosen channels, on a date at a time of each recipient's
    own local day (10:00 in New York and 10:00 in Honolulu are different instants)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="campaigns")
    audience = models.ForeignKey(Audience, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns",
                                 help_text="Empty: the offer's audience, or every member")
    channels = models.JSONField(default=list, help_text=f"Any of {', '.join(Channel.values)}")
    subject = models.CharField(max_length=120, help_text="Email subject, push and pass-message title")
    message = models.TextField(max_length=480, help_text="The text; SMS gets it shortened with the opt-out link")
    send_on = models.DateField(help_text="The recipient's local date")
    send_at = models.TimeField(help_text="The recipient's local time")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-send_on", "-send_at"]

    def __str__(self):
        return self.name


class Message(models.Model):
    """One recipient's planned message: a campaign's (one per recipient) or a welcome offer's (one per
    new card). `due_at` is the recipient's local send time in UTC; the dispatcher decides at that time."""

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        WELCOME = "welcome", "Welcome offer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("wallet.Customer", on_delete=models.CASCADE, related_name="+")
    card = models.ForeignKey("wallet.Card", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="+")
    channels = models.JSONField(default=list)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], condition=Q(kind="campaign"),
                                    name="message_once_per_campaign_and_customer"),
            models.UniqueConstraint(fields=["offer", "card"], condition=Q(kind="welcome"),
                                    name="message_welcome_once_per_card"),
            models.CheckConstraint(condition=Q(kind="welcome") | Q(campaign__isnull=False),
                                   name="message_campaign_kind_has_campaign"),
        ]
        indexes = [models.Index(fields=["status", "due_at"], name="message_due")]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.customer_id} at {self.due_at:%Y-%m-%d %H:%M}Z"


class SendLog(models.Model):
    """Every decision on every channel of a message: sent, skipped (and why) or failed. One row per
    message and channel; a send is recorded before the vendor call (so a crash never sends twice) and
    its outcome (provider id, or failed) filled in after it. A temporary failure is tried again on the
    same row (`attempts`, `retry_at`) after the same checks as the first time."""

    class Decision(models.TextChoices):
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    class Reason(models.TextChoices):
        SENT = "sent", "Sent"
        NO_CONSENT = "no_consent", "Not opted in for this merchant and channel"
        PAUSED = "communication_paused", "Customer paused all communication"
        QUIET_HOURS = "quiet_hours", "Inside the customer's quiet hours"
        FREQUENCY_CAP = "frequency_cap", "Frequency cap reached"
        NO_ADDRESS = "no_address", "No address, number or device for this channel"
        ERASED = "customer_erased", "Customer erased"
        CARD_CLOSED = "card_closed", "Card closed"
        OFFER_ENDED = "offer_ended", "Offer no longer valid"
        CAMPAIGN_CANCELLED = "campaign_cancelled", "Campaign cancelled"
        CHANNEL_UNAVAILABLE = "channel_unavailable", "Channel not configured on this site"
        PROVIDER_ERROR = "provider_error", "The provider refused or failed"
        NUMBER_CAPPED = "number_capped", "The phone number's SMS limit (all merchants) reached"
        RECIPIENT_OPTED_OUT = "recipient_opted_out", "The recipient told the provider to stop; consent withdrawn"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("wallet.Customer", on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="logs")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.CharField(max_length=24, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1, help_text="Sends tried on this channel")
    retry_at = models.DateTimeField(null=True, blank=True,
                                    help_text="A temporary failure is tried again then (checked afresh)")
    local_time = models.CharField(max_length=40, blank=True, help_text="The recipient's local time at the decision")
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "channel"], name="sendlog_once_per_message_channel"),
        ]
        indexes = [
            models.Index(fields=["merchant", "customer", "decision", "decided_at"], name="sendlog_cap"),
            models.Index(fields=["retry_at"], condition=Q(retry_at__isnull=False), name="sendlog_retry_due"),
        ]

    def __str__(self):
        return f"{self.channel} {self.decision} ({self.reason})"


class PushDevice(models.Model):
    """A phone of the customer's that accepts push notifications from the wallet app."""

    class Platform(models.TextChoices):
        APNS = "apns", "iOS (APNs)"
        FCM = "fcm", "Android (FCM)"

    customer = models.ForeignKey("wallet.Customer", on_delete=models.CASCADE, related_name="push_devices")
    platform = models.CharField(max_length=8, choices=Platform.choices)
    token = models.CharField(max_length=512)
    is_active = models.BooleanField(default=True, help_text="Off once the provider says the token is gone")
    created_at = models.DateTimeField(auto_now_add=True)
    last_registered_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "token"], name="push_device_token_unique")]

    def __str__(self):
        return f"{self.get_platform_display()} device of {self.customer_id}"


class PassOfferLine(models.Model):
    """The offer line a card's wallet pass shows now, so the refresh job updates only passes whose best
    offer changed (an offer's window opened or closed, it ended, a new one started)."""

    card = models.OneToOneField("wallet.Card", on_delete=models.CASCADE, related_name="+")
    line = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self):
        return f"{self.card_id}: {self.line or '(none)'}"
