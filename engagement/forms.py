"""Admin forms for offers, audiences and campaigns: what the model cannot say on its own (the rules that
depend on the kind of offer, windows, one merchant's stores and tiers only), said as clear field errors
before anything is saved.

Every chosen row must belong to the form's merchant. The admin already offers only the user's own
merchants' rows; these checks also hold for someone who runs two merchants, or a forged POST.
"""
import datetime as dt
import zoneinfo

from django import forms
from django.utils import timezone

from engagement.models import Audience, Campaign, Channel, MerchantEngagement, Offer
from merchants.selectors import MAX_RADIUS_KM

WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"), (5, "Saturday"),
            (6, "Sunday")]
NOT_YOURS = "This belongs to another merchant."


class MerchantFormMixin:
    """The merchant a form is for: the one chosen, or on a change page the row's own (read-only there)."""

    def form_merchant(self):
        merchant = self.cleaned_data.get("merchant") if "merchant" in self.fields else None
        if merchant is None and self.instance.merchant_id:
            merchant = self.instance.merchant
        return merchant

    def require_same_merchant(self, field: str, merchant_id_of) -> None:
        merchant, value = self.form_merchant(), self.cleaned_data.get(field)
        if merchant is None or value in (None, ""):
            return
        values = list(value) if hasattr(value, "__iter__") else [value]
        if any(merchant_id_of(item) != merchant.pk for item in values):
            self.add_error(field, NOT_YOURS)


class AudienceForm(MerchantFormMixin, forms.ModelForm):
    purchase_categories = forms.CharField(
        required=False, max_length=500,
        help_text="Comma-separated categories of line items, e.g. pastry, coffee beans (any case). "
                  "Members who bought any of them, at any time.",
    )
    near_reward_points = forms.IntegerField(
        required=False, min_value=1, label="Near a reward (points)",
        help_text="Within this many points of the cheapest active reward they cannot yet afford.",
    )
    min_visits = forms.IntegerField(required=False, min_value=1, help_text="At least this many purchases ...")

    class Meta:
        model = Audience
        fields = ("merchant", "name", "tiers", "min_balance", "max_balance", "can_redeem", "near_reward_points",
                  "min_days_since_visit", "max_days_since_visit", "min_visits", "visits_window_days",
                  "birthday_this_month", "purchase_categories", "near_store", "radius_km")
        widgets = {"tiers": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and isinstance(self.instance.purchase_categories, list):
            self.initial["purchase_categories"] = ", ".join(str(name) for name in self.instance.purchase_categories)

    def clean_purchase_categories(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data.get("purchase_categories", "").split(",")]
        unique = {}  # categories match in any case: "Pastry" and "pastry" are one, the first spelling kept
        for name in names:
            if name:
                unique.setdefault(name.lower(), name)
        return list(unique.values())

    def clean_radius_km(self):
        radius = self.cleaned_data.get("radius_km")
        if radius is not None and not 0 < radius <= MAX_RADIUS_KM:
            raise forms.ValidationError(f"Enter a radius of more than 0 and at most {MAX_RADIUS_KM:g} km.")
        return radius

    def clean(self):
        data = super().clean()
        self.require_same_merchant("near_store", lambda store: store.merchant_id)
        self.require_same_merchant("tiers", lambda tier: tier.program.merchant_id)
        store, radius = data.get("near_store"), data.get("radius_km")
        if radius is not None and store is None and "near_store" not in self.errors:
            self.add_error("near_store", "Choose the store the radius is measured from.")
        if store is not None and radius is None and "radius_km" not in self.errors:
            self.add_error("radius_km", "Enter how many km around the store.")
        if store is not None and (store.latitude is None or store.longitude is None):
            self.add_error("near_store", "This store has no location yet: add its latitude and longitude first.")
        _ordered(self, "min_balance", "max_balance", "The minimum balance is above the maximum.")
        _ordered(self, "min_days_since_visit", "max_days_since_visit",
                 "Nobody can be away at least this long and have visited within fewer days.")
        return data


class OfferForm(MerchantFormMixin, forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Store local days; none ticked: every day.",
    )

    class Meta:
        model = Offer
        fields = ("merchant", "title", "description", "kind", "multiplier", "bonus_points", "reward", "discount_text",
                  "coupon_code", "valid_from", "valid_until", "stores", "weekdays", "daily_start", "daily_end",
                  "audience", "is_welcome", "welcome_valid_days", "is_active")
        widgets = {"stores": forms.CheckboxSelectMultiple}

    # Which field each kind needs, and the fields that mean nothing for the other kinds.
    KIND_FIELDS = {
        Offer.Kind.MULTIPLIER: "multiplier",
        Offer.Kind.BONUS_POINTS: "bonus_points",
        Offer.Kind.EXTRA_REWARD: "reward",
        Offer.Kind.DISCOUNT: "discount_text",
    }
    REQUIRED_MESSAGES = {
        "multiplier": "A points multiplier offer needs its multiplier, e.g. 2 for double points.",
        "bonus_points": "A bonus points offer needs how many points it adds (more than 0).",
        "reward": "An extra reward offer needs the reward it gives.",
        "discount_text": 'A discount coupon needs what it gives, e.g. "15% off pastries".',
    }

    def clean_weekdays(self) -> list[int]:
        return sorted(set(self.cleaned_data.get("weekdays") or []))

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in self.KIND_FIELDS:
            needed = self.KIND_FIELDS[kind]
            if data.get(needed) in (None, "", 0) and needed not in self.errors:
                self.add_error(needed, self.REQUIRED_MESSAGES[needed])
            for other in set(self.KIND_FIELDS.values()) - {needed}:
                if data.get(other) not in (None, ""):
                    label = dict(Offer.Kind.choices)[kind].lower()
                    self.add_error(other, f"Leave this empty: it does not apply to a {label} offer.")
        if kind == Offer.Kind.MULTIPLIER and data.get("multiplier") is not None and data["multiplier"] <= 1:
            self.add_error("multiplier", "A multiplier of 1 or less gives nothing extra; use more than 1.")
        valid_from, valid_until = data.get("valid_from"), data.get("valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.add_error("valid_until", "The offer must end after it starts.")
        if (data.get("daily_start") is None) != (data.get("daily_end") is None):
            missing = "daily_end" if data.get("daily_end") is None else "daily_start"
            if missing not in self.errors:
                self.add_error(missing, "Give both the start and the end of the daily window, or neither.")
        self.require_same_merchant("stores", lambda store: store.merchant_id)
        self.require_same_merchant("audience", lambda audience: audience.merchant_id)
        self.require_same_merchant("reward", lambda reward: reward.program.merchant_id)
        return data


class CampaignForm(MerchantFormMixin, forms.ModelForm):
    channels = forms.MultipleChoiceField(
        choices=Channel.choices, widget=forms.CheckboxSelectMultiple,
        help_text="Only customers who opted in to a channel for you get it there.",
        error_messages={"required": "Choose at least one channel."},
    )

    class Meta:
        model = Campaign
        fields = ("merchant", "name", "offer", "audience", "channels", "subject", "message", "send_on", "send_at")

    def clean_channels(self) -> list[str]:
        chosen = set(self.cleaned_data.get("channels") or [])
        return [channel for channel in Channel.values if channel in chosen]

    def clean(self):
        data = super().clean()
        self.require_same_merchant("offer", lambda offer: offer.merchant_id)
        self.require_same_merchant("audience", lambda audience: audience.merchant_id)
        offer, now = data.get("offer"), timezone.now()
        if offer is not None and "offer" not in self.errors:
            if not offer.is_active:
                self.add_error("offer", "This offer is switched off; activate it first.")
            elif offer.valid_until is not None and offer.valid_until <= now:
                self.add_error("offer", "This offer has already ended.")
        send_on = data.get("send_on")
        if send_on is not None and send_on < _earliest_local_date(now):
            self.add_error("send_on", "This date has passed everywhere; choose today or later.")
        return data


def _ordered(form: forms.Form, low: str, high: str, message: str) -> None:
    low_value, high_value = form.cleaned_data.get(low), form.cleaned_data.get(high)
    if low_value is not None and high_value is not None and low_value > high_value:
        form.add_error(high, message)


def _earliest_local_date(now: dt.datetime) -> dt.date:
    """Today's date in the world's westernmost zone (UTC-12): a send date before it has passed for every
    recipient, whatever time zone they live in."""
    return now.astimezone(zoneinfo.ZoneInfo("Etc/GMT+12")).date()


class MerchantEngagementForm(forms.ModelForm):
    class Meta:
        model = MerchantEngagement
        fields = ("merchant", "daily_cap", "weekly_cap", "sender_name")

    def clean(self):
        data = super().clean()
        _ordered(self, "daily_cap", "weekly_cap", "The weekly cap cannot be below the daily cap.")
        return data
