"""Who an audience is: the active cards of a merchant's members (customers not erased) that match every
rule the audience sets. A rule left empty does not filter; no audience at all means every member.

Everything is one database query built from subqueries (balances, rewards, purchases), so choosing
among 10^5 cards never loops over them in Python. Two rules need the customer's own context:
- birthday_this_month compares with the month of `now` on the customer's wall clock: the few time
  zones the members live in are grouped by their local month (one small query), which makes the rule
  correct on the first and last day of a month.
- near_store keeps members whose home or last-seen location is within `radius_km` of the store: a
  latitude/longitude bounding box narrows (merchants.selectors), then the exact haversine is compared in
  SQL, so the answer stays a lazy queryset with no list of ids, however many members are near.

Category names are compared case-insensitively: PostgreSQL folds all of Unicode, SQLite only ASCII.
"""
import datetime as dt
import math
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable

from django.db import NotSupportedError
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Cos, Power, Radians, Sin

from merchants.models import Reward
from merchants.selectors import EARTH_RADIUS_KM, _bounding_box
from wallet.models import Card, Purchase

CUSTOMER = "wallet__customer__"


def audience_cards(merchant, audience, *, now: dt.datetime, tier_ids: Iterable[int] | None = None) -> QuerySet[Card]:
    """The active cards of `merchant`'s members in `audience` (None: every active member), at `now`.

    `tier_ids` replaces the audience's saved tiers: the admin previews rules before they are saved.
    """
    cards = _members(Card.objects.filter(merchant=merchant))
    if audience is None:
        return cards
    if audience.merchant_id != merchant.pk:
        return cards.none()
    return _matching(cards, audience, _tiers(audience, tier_ids), now)


def card_matches(audience, card, *, now: dt.datetime) -> bool:
    """Whether one card is in `audience` (None: every active member): the same rules, on one row."""
    cards = _members(Card.objects.filter(pk=card.pk))
    if audience is not None:
        if audience.merchant_id != card.merchant_id:
            return False
        cards = _matching(cards, audience, _tiers(audience, None), now)
    return cards.exists()


def audience_size(merchant, audience, *, now: dt.datetime, tier_ids: Iterable[int] | None = None) -> int:
    """How many members a campaign to `audience` would reach now: customers, not cards (a customer with
    two of the merchant's cards gets one message)."""
    cards = audience_cards(merchant, audience, now=now, tier_ids=tier_ids)
    return cards.order_by().values(f"{CUSTOMER}id").distinct().count()


# Rules ---------------------------------------------------------------------------------------------

def _members(cards: QuerySet[Card]) -> QuerySet[Card]:
    return cards.filter(status=Card.Status.ACTIVE, wallet__customer__erased_at__isnull=True)


def _tiers(audience, tier_ids) -> list[int]:
    if tier_ids is not None:
        return list(tier_ids)
    if audience.pk is None:
        return []
    return list(audience.tiers.values_list("pk", flat=True))


def _matching(cards: QuerySet[Card], audience, tier_ids: list[int], now: dt.datetime) -> QuerySet[Card]:
    if tier_ids:
        cards = cards.filter(tier_id__in=tier_ids)
    if audience.min_balance is not None:
        cards = cards.filter(balance__gte=audience.min_balance)
    if audience.max_balance is not None:
        cards = cards.filter(balance__lte=audience.max_balance)
    if audience.can_redeem:
        cards = cards.filter(Exists(_rewards().filter(points_cost__lte=OuterRef("balance"))))
    if audience.near_reward_points is not None:
        # The cheapest reward out of reach is at most N points away <=> some reward costs
        # more than the balance and at most balance + N.
        cards = cards.filter(Exists(_rewards().filter(
            points_cost__gt=OuterRef("balance"), points_cost__lte=OuterRef("balance") + audience.near_reward_points)))
    cards = _visit_rules(cards, audience, now)
    categories = _categories(audience.purchase_categories)
    if categories:
        cards = cards.filter(Exists(_visits(now).filter(ItemsHaveCategory("items", categories))))
    if audience.near_store_id is not None:
        cards = _near_store(cards, audience)
    if audience.birthday_this_month:
        cards = _birthday_this_month(cards, now)
    return cards


def _rewards() -> QuerySet[Reward]:
    """Rewards of the outer card's program that a member could redeem today (active, in stock)."""
    return Reward.objects.filter(program=OuterRef("program_id"), is_active=True).filter(
        Q(stock__isnull=True) | Q(stock__gt=0))


def _visits(now: dt.datetime) -> QuerySet[Purchase]:
    """The outer card's purchases up to `now` (a preview at a past moment ignores later ones)."""
    return Purchase.objects.filter(card=OuterRef("pk"), occurred_at__lte=now)


def _visit_rules(cards: QuerySet[Card], audience, now: dt.datetime) -> QuerySet[Card]:
    if audience.min_days_since_visit is not None:
        # Away at least N days: the last purchase, or for a member who never bought, the enrolment.
        last_visit = _visits(now).order_by("-occurred_at").values("occurred_at")[:1]
        cards = cards.alias(last_visit=Coalesce(Subquery(last_visit), F("created_at"))).filter(
            last_visit__lte=now - dt.timedelta(days=audience.min_days_since_visit))
    if audience.max_days_since_visit is not None:
        since = now - dt.timedelta(days=audience.max_days_since_visit)
        cards = cards.filter(Exists(_visits(now).filter(occurred_at__gte=since)))
    if audience.min_visits:
        since = now - dt.timedelta(days=audience.visits_window_days)
        counted = (_visits(now).filter(occurred_at__gte=since).order_by().values("card")
                   .annotate(visits=Count("pk")).values("visits"))
        cards = cards.alias(recent_visits=Coalesce(Subquery(counted, output_field=IntegerField()), 0)).filter(
            recent_visits__gte=audience.min_visits)
    return cards


def _categories(values) -> list[str]:
    if not isinstance(values, list):
        return []
    return sorted({str(value).strip().lower() for value in values if str(value).strip()})


class ItemsHaveCategory(Func):
    """True when a purchase's `items` (a JSON list of line items) holds a line whose "category" is one of
    `categories` (given lower-case), compared case-insensitively. Lines that are not objects, and a
    category that is not text, match nothing rather than failing the whole audience."""

    output_field = BooleanField()
    # Every category is a query parameter; the templates hold constants and the compiled column only.
    sqlite_template = (
        "EXISTS (SELECT 1 FROM json_each(%(expressions)s) AS line WHERE line.type = 'object'"
        " AND lower(json_extract(line.value, '$.category')) IN (%(placeholders)s))"
    )
    # jsonpath's lax mode reads a value that is not an array as a one-line list instead of failing.
    postgresql_template = (
        "EXISTS (SELECT 1 FROM jsonb_path_query(%(expressions)s, 'lax $[*]') AS line(value)"
        " WHERE jsonb_typeof(line.value) = 'object' AND lower(line.value ->> 'category') = ANY(%%s))"
    )

    def __init__(self, field_name: str, categories: list[str]):
        super().__init__(F(field_name))
        self.categories = list(categories)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"Purchase categories are not supported on {connection.vendor}.")

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = super().as_sql(compiler, connection, template=self.sqlite_template,
                                     placeholders=", ".join(["%s"] * len(self.categories)))
        return sql, (*params, *self.categories)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = super().as_sql(compiler, connection, template=self.postgresql_template)
        return sql, (*params, self.categories)


def _near_store(cards: QuerySet[Card], audience) -> QuerySet[Card]:
    store = audience.near_store
    if (audience.radius_km is None or store.merchant_id != audience.merchant_id
            or store.latitude is None or store.longitude is None):
        return cards.none()
    latitude, longitude, radius_km = float(store.latitude), float(store.longitude), float(audience.radius_km)
    # haversine_m(...) <= r  <=>  hav(central angle) <= sin²(r / 2R): no asin or square root in SQL.
    threshold = math.sin(radius_km / EARTH_RADIUS_KM / 2) ** 2
    box = _bounding_box(latitude, longitude, radius_km)
    cards = cards.alias(home_hav=_haversine("home", latitude, longitude),
                        seen_hav=_haversine("last_seen", latitude, longitude))
    return cards.filter(
        (_prefixed(box, f"{CUSTOMER}home_") & Q(home_hav__lte=threshold))
        | (_prefixed(box, f"{CUSTOMER}last_seen_") & Q(seen_hav__lte=threshold))
    )


def _haversine(place: str, latitude: float, longitude: float):
    """sin²(Δφ/2) + cos φ1·cos φ2·sin²(Δλ/2) between the customer's `place` and a fixed point."""
    phi = Radians(Cast(F(f"{CUSTOMER}{place}_latitude"), FloatField()))
    lam = Radians(Cast(F(f"{CUSTOMER}{place}_longitude"), FloatField()))
    phi_0, lam_0 = math.radians(latitude), math.radians(longitude)
    return (Power(Sin((phi - Value(phi_0)) / Value(2.0)), 2)
            + Cos(phi) * Value(math.cos(phi_0)) * Power(Sin((lam - Value(lam_0)) / Value(2.0)), 2))


def _prefixed(condition: Q, prefix: str) -> Q:
    """The store directory's box (on `latitude`/`longitude`) re-aimed at another pair of columns."""
    rebuilt = Q()
    rebuilt.connector, rebuilt.negated = condition.connector, condition.negated
    rebuilt.children = [_prefixed(child, prefix) if isinstance(child, Q) else (prefix + child[0], child[1])
                        for child in condition.children]
    return rebuilt


def _birthday_this_month(cards: QuerySet[Card], now: dt.datetime) -> QuerySet[Card]:
    zones = (cards.filter(wallet__customer__birth_month__isnull=False).order_by()
             .values_list(f"{CUSTOMER}time_zone", flat=True).distinct())
    by_month = defaultdict(list)
    for zone in zones:
        by_month[_local_month(now, zone)].append(zone)
    condition = Q(pk__in=[])
    for month, zone_names in by_month.items():
        condition |= Q(wallet__customer__time_zone__in=zone_names, wallet__customer__birth_month=month)
    return cards.filter(condition)


def _local_month(now: dt.datetime, zone: str) -> int:
    try:
        return now.astimezone(zoneinfo.ZoneInfo(zone)).month
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return now.astimezone(dt.UTC).month  # a zone no longer known: read as UTC rather than fail
