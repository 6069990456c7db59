"""Campaigns: plan one message per recipient at the recipient's own local send time, or cancel.

"10:00 on 7 December" means 10:00 wherever each recipient lives, so a campaign becomes many instants:
each planned Message carries its recipient's `due_at` in UTC and the dispatcher (engagement.dispatch)
decides it when that instant comes. Planning is idempotent: one message per (campaign, customer),
enforced by the database, so scheduling again only adds members who joined since.
"""
import datetime as dt
import logging
import zoneinfo

from django.db import transaction
from django.utils import timezone

from engagement.audiences import audience_cards
from engagement.models import Campaign, Channel, Message
from wallet.errors import InvalidRequest
from wallet.models import Card

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000


class Scheduled(int):
    """The number of messages planned, which is what callers count; `passed` says how many recipients
    were left out because their local send time had already gone by when the campaign was scheduled."""

    passed: int

    def __new__(cls, planned: int, *, passed: int = 0):
        result = super().__new__(cls, planned)
        result.passed = passed
        return result


def local_send_time(send_on: dt.date, send_at: dt.time, time_zone: str) -> dt.datetime:
    """The UTC instant at which it is `send_at` on `send_on` in `time_zone`.

    fold=0 gives both DST rules we want: a wall time that does not exist (02:30 on a spring-forward
    day) is read with the offset before the change, so it lands one gap later (03:30); an ambiguous
    one (01:30 on a fall-back day) is its first occurrence.
    """
    local = dt.datetime.combine(send_on, send_at.replace(tzinfo=None, fold=0))
    return local.replace(tzinfo=zoneinfo.ZoneInfo(time_zone)).astimezone(dt.UTC)


def schedule_campaign(campaign: Campaign, *, actor=None, now: dt.datetime | None = None) -> Scheduled:
    """Plan the campaign's messages (one per member, whatever number of cards they hold here) and
    mark it scheduled. Recipients whose local send time has passed are left out and counted."""
    now = now or timezone.now()
    with transaction.atomic():
        # The campaign row lock serialises two schedulings of the same campaign (a double click).
        campaign = Campaign.objects.select_for_update().select_related("offer").get(pk=campaign.pk)
        _check_schedulable(campaign, now)
        already = set(Message.objects.filter(campaign=campaign).values_list("customer_id", flat=True))
        planned, passed = _plan_messages(campaign, already, now)
        if not already and not planned:
            if passed:
                raise InvalidRequest(
                    "The send time has already passed for every recipient; choose a later date or time.",
                    fields={"send_at": ["Already passed in every recipient's time zone."]},
                )
            raise InvalidRequest("This campaign's audience has no members to send to.",
                                 fields={"audience": ["No active members."]})
        if campaign.status != Campaign.Status.SCHEDULED:
            campaign.status = Campaign.Status.SCHEDULED
            campaign.scheduled_at = now
            campaign.save(update_fields=["status", "scheduled_at"])
    logger.info("campaign %s scheduled by %s: %s planned, %s passed", campaign.pk,
                getattr(actor, "pk", None), planned, passed)
    return Scheduled(planned, passed=passed)


def cancel_campaign(campaign: Campaign, *, now: dt.datetime | None = None) -> Campaign:
    """Stop a campaign. Messages already decided stay as logged; the dispatcher skips the pending
    ones as `campaign_cancelled`, so the send log shows every recipient who did not get it."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == Campaign.Status.CANCELLED:
            return campaign
        if campaign.status == Campaign.Status.DONE:
            raise InvalidRequest("This campaign has already been sent to everyone; there is nothing to cancel.")
        campaign.status = Campaign.Status.CANCELLED
        campaign.save(update_fields=["status"])
    logger.info("campaign %s cancelled at %s", campaign.pk, (now or timezone.now()).isoformat())
    return campaign


def _check_schedulable(campaign: Campaign, now: dt.datetime) -> None:
    if campaign.status in (Campaign.Status.CANCELLED, Campaign.Status.DONE):
        raise InvalidRequest(f"A {campaign.get_status_display().lower()} campaign cannot be scheduled.")
    channels = campaign.channels if isinstance(campaign.channels, list) else []
    if not channels:
        raise InvalidRequest("Choose at least one channel.", fields={"channels": ["Choose at least one channel."]})
    unknown = sorted({str(channel) for channel in channels} - set(Channel.values))
    if unknown:
        raise InvalidRequest(f"Unknown channel: {', '.join(unknown)}.",
                             fields={"channels": [f"Choose from {', '.join(Channel.values)}."]})
    offer = campaign.offer
    if offer.merchant_id != campaign.merchant_id:
        raise InvalidRequest("The offer belongs to another merchant.", fields={"offer": ["Not one of your offers."]})
    if campaign.audience_id and campaign.audience.merchant_id != campaign.merchant_id:
        raise InvalidRequest("The audience belongs to another merchant.",
                             fields={"audience": ["Not one of your audiences."]})
    if not offer.is_active:
        raise InvalidRequest("The offer is not active.", fields={"offer": ["Inactive offer."]})
    if offer.valid_until is not None and offer.valid_until <= now:
        raise InvalidRequest("The offer has already ended.", fields={"offer": ["Ended offer."]})


def _plan_messages(campaign: Campaign, already: set[int], now: dt.datetime) -> tuple[int, int]:
    """Create the missing messages in batches. Returns (planned, passed)."""
    audience = campaign.audience or campaign.offer.audience
    members = audience_cards(campaign.merchant, audience, now=now).values("pk")
    # Re-read through a plain queryset so whatever the audience query annotates or de-duplicates,
    # the first card (lowest id) of each customer is the one the message names.
    rows = (Card.objects.filter(pk__in=members).order_by("wallet__customer_id", "pk")
            .values_list("pk", "wallet__customer_id", "wallet__customer__time_zone"))
    due_by_zone: dict[str, dt.datetime] = {}
    seen = set(already)
    batch: list[Message] = []
    planned = passed = 0
    for card_id, customer_id, time_zone in rows.iterator(chunk_size=BATCH_SIZE):
        if customer_id in seen:
            continue
        seen.add(customer_id)
        if time_zone not in due_by_zone:
            due_by_zone[time_zone] = local_send_time(campaign.send_on, campaign.send_at, time_zone)
        due_at = due_by_zone[time_zone]
        if due_at < now:
            passed += 1
            continue
        batch.append(Message(
            merchant_id=campaign.merchant_id, customer_id=customer_id, card_id=card_id,
            kind=Message.Kind.CAMPAIGN, campaign=campaign, offer_id=campaign.offer_id,
            channels=list(dict.fromkeys(campaign.channels)), due_at=due_at,
        ))
        if len(batch) >= BATCH_SIZE:
            planned += len(Message.objects.bulk_create(batch))
            batch = []
    if batch:
        planned += len(Message.objects.bulk_create(batch))
    return planned, passed
