"""Offers ranked by relevance for one customer, each with the reasons of its place.

Candidates: across the customer's active cards (active merchants only), the offers that hold for the
card (engagement.offers: period, audience, welcome age) and that are open right now at at least one
participating active store, judged on that store's own clock. The store an offer is shown with is the
nearest open one when a location is known, else the one where it stays open longest.

    score = distance + time + history                                (higher ranks first)

    distance  1 / (1 + km) to that store, from the point the app sent, else the customer's last-seen
              location, else home: 300 m -> 0.77, 2 km -> 0.33, 20 km -> 0.05. No point or no store
              coordinates -> 0.
    time      +0.15 when it stops within 2 hours at that store (its daily window closes or its period
              ends); +0.10 when its period ends today (the store's local day).
    history   the customer's purchases at the merchant (any of their cards, refunded ones left out):
              frequency 0.25 x min(visits in the last 90 days, 10) / 10, recency 0.15 / (1 + days since
              the last visit / 7), and +0.20 when a line item bought in the last 180 days carries a
              "category" among the offer audience's purchase_categories.

Distance dominates on purpose (at most 1.0 against 0.25 and 0.6): what is open around the corner beats
a favourite shop across town, but among shops at similar distances the customer's own habits and an
offer about to end decide. Ties: the offer that ends first, then the older offer.
"""
import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from engagement.models import Offer
from engagement.offers import closes_at, current_offers, fits_card, offer_is_open, store_ids_of
from merchants.models import Store
from merchants.selectors import haversine_m
from wallet.models import Card, Customer, Purchase

SOON = dt.timedelta(hours=2)
CLOSES_SOON_WEIGHT = 0.15
ENDS_TODAY_WEIGHT = 0.10
FREQUENCY_WEIGHT = 0.25
FREQUENCY_WINDOW = dt.timedelta(days=90)
FREQUENCY_CAP = 10
RECENCY_WEIGHT = 0.15
RECENCY_HALF_DAYS = 7
CATEGORY_WEIGHT = 0.20
HISTORY_WINDOW = dt.timedelta(days=180)
HISTORY_ROWS = 200  # the most recent purchases read for habits: enough for a regular, cheap for anyone
PASS_LINE_LENGTH = 120
_NO_END = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RankedOffer:
    offer: Offer
    card: Card
    nearest_store: Store | None  # where the offer is shown: nearest open store, else the one open longest
    distance_m: int | None  # None: no location known, or that store has no coordinates
    score: float
    reasons: list[str] = field(default_factory=list)
    open_until: dt.datetime | None = None  # in the store's (else the merchant's) time zone; None: no end


@dataclass
class _Habits:
    visits: int = 0
    last_visit: dt.datetime | None = None
    categories: set = field(default_factory=set)


def rank_offers(card_or_customer, *, now: dt.datetime | None = None, latitude: float | None = None,
                longitude: float | None = None) -> list[RankedOffer]:
    """Ranked offers for a customer (all their active cards) or for one card, best first.

    The point is (latitude, longitude) when both are given, else the customer's last-seen location,
    else their home; without any, distance plays no part.
    """
    now = now or timezone.now()
    if isinstance(card_or_customer, Card):
        customer, cards = card_or_customer.wallet.customer, _active_cards().filter(pk=card_or_customer.pk)
    else:
        customer, cards = card_or_customer, _active_cards().filter(wallet__customer=card_or_customer)
    return _rank(customer, list(cards), now=now, point=_point(customer, latitude, longitude))


def pass_offer_line(card, now: dt.datetime | None = None) -> str | None:
    """The best offer for this card at `now`, as one line for its pass (TESSERA_PASS_OFFER_HOOK).

    Ranked without any location: a pass is the same wherever the phone is."""
    if not card.is_active:
        return None
    ranked = _rank(card.wallet.customer, list(_active_cards().filter(pk=card.pk)), now=now or timezone.now(),
                   point=None)
    if not ranked:
        return None
    offer = ranked[0].offer
    detail = offer_detail(offer)
    line = f"{offer.title}: {detail}" if detail and detail.lower() not in offer.title.lower() else offer.title
    return line if len(line) <= PASS_LINE_LENGTH else line[: PASS_LINE_LENGTH - 1].rstrip() + "…"


def offer_detail(offer: Offer) -> str:
    """What the offer gives, in a few words."""
    if offer.kind == Offer.Kind.MULTIPLIER:
        return f"{offer.multiplier.normalize():f}x points"
    if offer.kind == Offer.Kind.BONUS_POINTS:
        return f"+{offer.bonus_points} points"
    if offer.kind == Offer.Kind.EXTRA_REWARD:
        return f"free {offer.reward.name}" if offer.reward_id else ""
    return offer.discount_text


def _active_cards():
    return (
        Card.objects.filter(status=Card.Status.ACTIVE, merchant__is_active=True)
        .select_related("merchant", "program", "tier", "wallet__customer")
        .order_by("created_at", "id")
    )


def _point(customer: Customer, latitude, longitude) -> tuple[float, float] | None:
    if latitude is not None and longitude is not None:
        return float(latitude), float(longitude)
    for lat, lon in ((customer.last_seen_latitude, customer.last_seen_longitude),
                     (customer.home_latitude, customer.home_longitude)):
        if lat is not None and lon is not None:
            return float(lat), float(lon)
    return None


def _rank(customer: Customer, cards: list[Card], *, now: dt.datetime, point) -> list[RankedOffer]:
    if not cards:
        return []
    card_of = {}
    for card in cards:  # two programs of one merchant: its offers are shown once, with the oldest card
        card_of.setdefault(card.merchant_id, card)
    offers = list(current_offers(card_of, now=now))
    if not offers:
        return []
    stores_of: dict[int, list[Store]] = {}
    for store in Store.objects.filter(merchant_id__in=card_of, is_active=True).order_by("id"):
        stores_of.setdefault(store.merchant_id, []).append(store)
    habits = _habits(customer, card_of, now)
    ranked = []
    for offer in offers:
        card = card_of[offer.merchant_id]
        open_at = _open_stores(offer, stores_of.get(offer.merchant_id, []), now)
        if not open_at or not fits_card(offer, card, now=now):
            continue
        ranked.append(_score(offer, card, open_at, point, habits.get(offer.merchant_id, _Habits()), now))
    ranked.sort(key=lambda item: (-item.score, item.offer.valid_until or _NO_END, item.offer.pk))
    return ranked


def _open_stores(offer: Offer, stores: list[Store], now: dt.datetime) -> list[Store | None]:
    """Participating active stores where the offer holds now. A merchant with no store at all (online
    only) still has its every-store offers, judged on the merchant's clock: [None]."""
    limited_to = store_ids_of(offer)
    if not stores and not limited_to:
        return [None] if offer_is_open(offer, store=None, now=now) else []
    return [
        store for store in stores
        if (not limited_to or store.pk in limited_to) and offer_is_open(offer, store=store, now=now)
    ]


def _score(offer, card, open_at, point, habits: _Habits, now) -> RankedOffer:
    reasons = []
    store, distance_m = _where(open_at, point, offer, now)
    score = 0.0
    if distance_m is not None:
        score += 1 / (1 + distance_m / 1000)
        reasons.append(f"{store.name} is {_distance_text(distance_m)} away")
    until = closes_at(offer, store, now)
    if until is not None and until - now <= SOON:
        score += CLOSES_SOON_WEIGHT
        reasons.append(f"ends at {until:%H:%M}")
    if offer.valid_until is not None:
        zone = until.tzinfo  # valid_until set: `until` is never None
        last_moment = (offer.valid_until - dt.timedelta(microseconds=1)).astimezone(zone)
        if last_moment.date() == now.astimezone(zone).date():
            score += ENDS_TODAY_WEIGHT
            reasons.append("last day")
    if habits.visits:
        score += FREQUENCY_WEIGHT * min(habits.visits, FREQUENCY_CAP) / FREQUENCY_CAP
        reasons.append(f"{habits.visits} visit{'s' if habits.visits != 1 else ''} in the last 90 days")
    if habits.last_visit is not None:
        days = max(0.0, (now - habits.last_visit).total_seconds() / 86400)
        score += RECENCY_WEIGHT / (1 + days / RECENCY_HALF_DAYS)
        reasons.append(f"last visit {int(days)} day{'s' if int(days) != 1 else ''} ago")
    wanted = _audience_categories(offer)
    matching = sorted(wanted & habits.categories)
    if matching:
        score += CATEGORY_WEIGHT
        reasons.append(f"you buy {', '.join(matching)}")
    return RankedOffer(offer=offer, card=card, nearest_store=store, distance_m=distance_m, score=round(score, 4),
                       reasons=reasons, open_until=until)


def _where(open_at: list, point, offer, now) -> tuple[Store | None, int | None]:
    """The store to show: the nearest open one with coordinates, else the one where the offer stays
    open longest (no end counts as longest)."""
    if point is not None:
        located = [s for s in open_at if s is not None and s.latitude is not None and s.longitude is not None]
        if located:
            distances = [(round(haversine_m(*point, float(s.latitude), float(s.longitude))), s.pk, s) for s in located]
            distance_m, _pk, store = min(distances, key=lambda row: (row[0], row[1]))
            return store, distance_m
    longest = max(open_at, key=lambda s: (closes_at(offer, s, now) or _NO_END, -(s.pk if s else 0)))
    return longest, None


def _distance_text(distance_m: int) -> str:
    return f"{distance_m} m" if distance_m < 1000 else f"{distance_m / 1000:.1f} km"


def _audience_categories(offer: Offer) -> set[str]:
    if offer.audience_id is None:
        return set()
    return {str(category).strip().lower() for category in (offer.audience.purchase_categories or []) if category}


def _habits(customer: Customer, merchant_ids, now: dt.datetime) -> dict[int, _Habits]:
    """Per merchant: visits in the last 90 days, the last visit and the categories bought (180 days)."""
    rows = (
        Purchase.objects.filter(card__wallet__customer=customer, merchant_id__in=list(merchant_ids),
                                occurred_at__gte=now - HISTORY_WINDOW, occurred_at__lte=now)
        .filter(~Q(status=Purchase.Status.REFUNDED))
        .order_by("-occurred_at")
        .values_list("merchant_id", "occurred_at", "items")[:HISTORY_ROWS]
    )
    habits: dict[int, _Habits] = {}
    for merchant_id, occurred_at, items in rows:
        merchant_habits = habits.setdefault(merchant_id, _Habits())
        if occurred_at >= now - FREQUENCY_WINDOW:
            merchant_habits.visits += 1
        if merchant_habits.last_visit is None:
            merchant_habits.last_visit = occurred_at
        for line in items if isinstance(items, list) else []:
            category = line.get("category") if isinstance(line, dict) else None
            if isinstance(category, str) and category.strip():
                merchant_habits.categories.add(category.strip().lower())
    return habits
