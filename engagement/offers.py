"""Which offers hold for a card, where and when.

An offer holds at a moment when it is active, inside its period (valid_from <= now < valid_until),
at a store that takes part (no stores chosen: every store of the merchant), on one of its weekdays and
inside its daily window. Weekdays and the window are read on the STORE's wall clock: "07:00-10:00" at a
Tokyo store means breakfast in Tokyo, whatever the merchant's or the customer's zone. A window that ends
before it starts runs past midnight and belongs to the weekday it started on (Friday 22:00-02:00 still
holds at 01:00 on Saturday, not at 01:00 on Friday); equal start and end mean a whole day from start.

For a card, an offer also has to fit its audience (engagement.audiences) and, for a welcome offer,
the card has to be younger than the offer's `welcome_valid_days`.
"""
import datetime as dt
import zoneinfo
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, QuerySet

from engagement.audiences import card_matches
from engagement.models import Offer
from merchants import rules_cache
from wallet.models import Card, Customer

COORDINATE_PLACES = Decimal("0.000001")  # the Customer columns keep 6 decimals (about 0.1 m)


def current_offers(merchant_ids: Iterable[int], *, now: dt.datetime, kinds: Iterable[str] | None = None) -> QuerySet:
    """Active offers of these merchants inside their period at `now`, with what judging them reads
    (participating stores, audience, reward) loaded in a fixed number of queries."""
    offers = Offer.objects.filter(merchant_id__in=list(merchant_ids), is_active=True, valid_from__lte=now).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    )
    if kinds is not None:
        offers = offers.filter(kind__in=list(kinds))
    return offers.select_related("merchant", "audience", "reward").prefetch_related("stores").order_by("id")


def store_ids_of(offer: Offer) -> set[int]:
    """The stores an offer is limited to; empty means every store of its merchant."""
    return {store.pk for store in offer.stores.all()}  # .all() reads the prefetch when there is one


def time_zone_at(offer: Offer, store) -> zoneinfo.ZoneInfo:
    """Whose wall clock the offer's weekdays and window are read on: the store's, else the merchant's."""
    return zoneinfo.ZoneInfo(store.time_zone if store is not None else offer.merchant.time_zone)


def offer_is_open(offer: Offer, *, store, now: dt.datetime) -> bool:
    """Whether `offer` holds at `store` (None: a sale with no known store) at `now`.

    A sale with no known store gets only offers meant for every store, judged on the merchant's clock.
    """
    if not offer.is_active or now < offer.valid_from:
        return False
    if offer.valid_until is not None and now >= offer.valid_until:
        return False
    limited_to = store_ids_of(offer)
    if store is None:
        if limited_to:
            return False
    elif store.merchant_id != offer.merchant_id or (limited_to and store.pk not in limited_to):
        return False
    return window_started_at(offer, now.astimezone(time_zone_at(offer, store))) is not None


def window_started_at(offer: Offer, local: dt.datetime) -> dt.date | None:
    """The local date whose weekday-and-window slot contains the local moment `local`, or None.

    With a window running past midnight, the early-morning part belongs to the day before.
    """
    today = local.date()
    if offer.daily_start is None:
        return today if _on_weekday(offer, today) else None
    start, end, clock = offer.daily_start, offer.daily_end, local.time().replace(tzinfo=None)
    yesterday = today - dt.timedelta(days=1)
    if start < end:
        started = today if start <= clock < end else None
    elif clock >= start:
        started = today
    else:
        # Before today's start: inside the window only if yesterday's ran past midnight up to `end`
        # (a whole-day window, start == end, always does).
        started = yesterday if (clock < end or start == end) else None
    return started if started is not None and _on_weekday(offer, started) else None


def _on_weekday(offer: Offer, day: dt.date) -> bool:
    return not offer.weekdays or day.weekday() in offer.weekdays


def closes_at(offer: Offer, store, now: dt.datetime) -> dt.datetime | None:
    """When an offer that holds now at `store` stops holding there (local time of the store's zone),
    or None when it runs on with no end in sight (no window, every weekday, no end of period)."""
    zone = time_zone_at(offer, store)
    local = now.astimezone(zone)
    started = window_started_at(offer, local)
    candidates = []
    if offer.valid_until is not None:
        candidates.append(offer.valid_until.astimezone(zone))
    if started is not None:
        if offer.daily_start is not None:
            start, end = offer.daily_start, offer.daily_end
            end_date = started if start < end else started + dt.timedelta(days=1)
            candidates.append(_local(end_date, end, zone))
        elif offer.weekdays:
            day = started + dt.timedelta(days=1)
            for _ in range(7):  # the first following day not among the weekdays ends the run
                if not _on_weekday(offer, day):
                    candidates.append(_local(day, dt.time.min, zone))
                    break
                day += dt.timedelta(days=1)
    return min(candidates) if candidates else None


def _local(day: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    # Through UTC and back, so a wall time skipped by a DST change lands on the real instant.
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC).astimezone(zone)


def fits_card(offer: Offer, card: Card, *, now: dt.datetime) -> bool:
    """The card-side conditions: same merchant, a welcome offer only for a young enough card, the audience."""
    if offer.merchant_id != card.merchant_id:
        return False
    if offer.is_welcome and now >= card.created_at + dt.timedelta(days=offer.welcome_valid_days):
        return False
    return offer.audience_id is None or card_matches(offer.audience, card, now=now)


def valid_offers(card: Card, *, now: dt.datetime, store=None, kinds: Iterable[str] | None = None) -> list[Offer]:
    """The offers of the card's merchant that hold for this card at `store` (None: only offers for every
    store) at `now`, oldest first. A closed card has none. `kinds` narrows to some Offer.Kind values.

    Reads the merchant's active offers from the per-process rules cache when the card came with its
    merchant's rules version (a card locked for a purchase does), and judges period and window here."""
    if not card.is_active:
        return []
    wanted = None if kinds is None else set(kinds)
    return [
        offer for offer in _active_offers(card)
        if (wanted is None or offer.kind in wanted)
        and offer_is_open(offer, store=store, now=now) and fits_card(offer, card, now=now)
    ]


def _active_offers(card: Card) -> list[Offer]:
    merchant_loaded = Card._meta.get_field("merchant").is_cached(card)
    return rules_cache.cached(
        card.merchant_id, rules_cache.version_of(card.merchant) if merchant_loaded else None, "active_offers",
        lambda: list(
            Offer.objects.filter(merchant_id=card.merchant_id, is_active=True)
            .select_related("merchant", "audience", "reward").prefetch_related("stores").order_by("id")
        ),
    )


def record_last_seen(customer: Customer, latitude: float, longitude: float, *, now: dt.datetime) -> Customer:
    """Remember where the wallet app last saw the customer (sent with an offers request), for ranking
    offers later without a location and for "near a store" audiences."""
    customer.last_seen_latitude = Decimal(str(latitude)).quantize(COORDINATE_PLACES, rounding=ROUND_HALF_UP)
    customer.last_seen_longitude = Decimal(str(longitude)).quantize(COORDINATE_PLACES, rounding=ROUND_HALF_UP)
    customer.last_seen_at = now
    customer.save(update_fields=["last_seen_latitude", "last_seen_longitude", "last_seen_at"])
    return customer
