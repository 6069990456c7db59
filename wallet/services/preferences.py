"""Consent: which merchants may contact a customer, on which channel, and when.

Opt-in only: a channel with no stored preference is off. Every change of a channel's consent
appends a `wallet.consent.changed` event, so the merchant's CRM hears of it through the outbox.
"""
import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from merchants.models import Merchant
from wallet.errors import InvalidRequest
from wallet.events import emit_event
from wallet.models import CommunicationPreference, Customer

CHANNELS = tuple(CommunicationPreference.Channel.values)


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time

    def contains(self, local_time: dt.time) -> bool:
        """Whether a local wall-clock time falls in the quiet period (which may span midnight)."""
        if self.start < self.end:
            return self.start <= local_time < self.end
        return local_time >= self.start or local_time < self.end


def set_channel_consent(
    customer: Customer, merchant: Merchant, channels: dict[str, bool], *, source: str = ""
) -> dict[str, bool]:
    """Opt in or out per channel for one merchant. Returns the merchant's full channel map.
    `source` tells the CRM who changed it when it was not the customer in our app or link."""
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise InvalidRequest("Unknown channel.", fields={name: ["Unknown channel."] for name in unknown})
    now = timezone.now()
    with transaction.atomic():
        existing = {
            preference.channel: preference
            for preference in CommunicationPreference.objects.select_for_update().filter(
                customer=customer, merchant=merchant
            )
        }
        for channel, opted_in in channels.items():
            preference = existing.get(channel)
            if preference is not None and preference.is_opted_in == opted_in:
                continue
            if preference is None and not opted_in:
                continue  # absent already means "no"
            if preference is None:
                CommunicationPreference.objects.create(
                    customer=customer, merchant=merchant, channel=channel, is_opted_in=opted_in
                )
            else:
                preference.is_opted_in = opted_in
                preference.save(update_fields=["is_opted_in", "updated_at"])
            emit_event(
                "wallet.consent.changed",
                merchant_id=merchant.pk,
                customer_id=customer.pk,
                occurred_at=now,
                payload={"customer_id": customer.pk, "channel": channel, "opted_in": opted_in,
                         **({"source": source} if source else {})},
            )
    return channel_consents(customer, merchant)


def withdraw_consent_everywhere(customer: Customer, channels=None, *, source: str = "") -> list[int]:
    """Opt the customer out of `channels` (every channel when None) with every merchant they had opted
    in to; the merchants' ids.

    For erasure (everything), and for an opt-out the customer gave the provider rather than one
    merchant: an SMS "STOP" reply reaches the site's sending number, which every merchant shares, and
    the provider refuses every merchant's texts from then on. Each merchant's CRM still hears of it
    through `wallet.consent.changed`.
    """
    with transaction.atomic():
        preferences = CommunicationPreference.objects.filter(customer=customer, is_opted_in=True)
        if channels is not None:
            preferences = preferences.filter(channel__in=channels)
        opted_in: dict[int, list[str]] = {}
        for merchant_id, channel in preferences.order_by("pk").values_list("merchant_id", "channel"):
            opted_in.setdefault(merchant_id, []).append(channel)
        for merchant in Merchant.objects.filter(pk__in=opted_in).order_by("pk"):
            set_channel_consent(customer, merchant, dict.fromkeys(opted_in[merchant.pk], False), source=source)
    return sorted(opted_in)


def channel_consents(customer: Customer, merchant: Merchant) -> dict[str, bool]:
    stored = dict(
        CommunicationPreference.objects.filter(customer=customer, merchant=merchant).values_list(
            "channel", "is_opted_in"
        )
    )
    return {channel: stored.get(channel, False) for channel in CHANNELS}


def update_communication_settings(
    customer: Customer, *, paused: bool | None = None, quiet_hours: QuietHours | None | bool = False
) -> Customer:
    """Change the global switches. `quiet_hours`: a QuietHours to set, None to clear, False to leave."""
    fields = []
    if paused is not None:
        customer.communication_paused = paused
        fields.append("communication_paused")
    if quiet_hours is not False:
        if quiet_hours is not None and quiet_hours.start == quiet_hours.end:
            raise InvalidRequest(
                "Quiet hours must start and end at different times.", fields={"quiet_hours_end": ["Same as start."]}
            )
        customer.quiet_hours_start = quiet_hours.start if quiet_hours else None
        customer.quiet_hours_end = quiet_hours.end if quiet_hours else None
        fields += ["quiet_hours_start", "quiet_hours_end"]
    if fields:
        customer.save(update_fields=fields)
    return customer


def may_contact(customer: Customer, merchant: Merchant, channel: str, moment: dt.datetime) -> tuple[bool, str]:
    """Whether `merchant` may reach `customer` on `channel` at `moment`, and if not, why.

    Checked at send time by every sender: the global pause, the channel's opt-in for this merchant,
    and quiet hours in the customer's own time zone.
    """
    if customer.erased_at is not None:
        return False, "customer_erased"
    if customer.communication_paused:
        return False, "paused"
    if not channel_consents(customer, merchant).get(channel, False):
        return False, "not_opted_in"
    if customer.quiet_hours_start is not None:
        local = moment.astimezone(zoneinfo.ZoneInfo(customer.time_zone)).time()
        if QuietHours(customer.quiet_hours_start, customer.quiet_hours_end).contains(local):
            return False, "quiet_hours"
    return True, "allowed"
