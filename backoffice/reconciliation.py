"""Reconciliation: do a merchant's points add up against its POS purchases over a period, and if not,
exactly where.

Days are the merchant's local days: a period from `start` to `end` (inclusive) runs from local
midnight of `start` to local midnight after `end`, so a sale at 23:30 local belongs to that day.
Everything is aggregated in the database (one GROUP BY local day and kind over the ledger's
(merchant, occurred_at) index, one over the purchases), so a period over a million entries costs a
handful of queries and never a Python loop over entries.

The points identity shown to the merchant is issued - redeemed - expired - reversed + adjusted ==
net, where net is the sum of every entry in the period. Each entry kind falls in exactly one group,
so it holds by construction; a kind added later without a group here breaks it visibly instead of
hiding in a total.
"""
import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from core.money import to_major_units
from merchants.models import Merchant, Store
from pos_integration.models import WebhookDelivery
from wallet.models import Card, LedgerEntry, Purchase

MAX_PERIOD_DAYS = 366
LISTED_PER_KIND = 200  # the page; a merchant with more of one kind has a systemic problem, and a count

Kind = LedgerEntry.Kind
ISSUED = (Kind.EARN, Kind.WELCOME)
REDEEMED = (Kind.REDEEM, Kind.REDEMPTION_CANCEL)
EXPIRED = (Kind.EXPIRE,)
REVERSED = (Kind.REFUND, Kind.REVERSAL)
ADJUSTED = (Kind.ADJUST,)
PURCHASE_KINDS = (Kind.EARN, Kind.REFUND)  # entries that must name the purchase they belong to


@dataclass(frozen=True)
class Sales:
    """POS purchases that occurred in a period (refunds counted against the purchase's own day)."""

    count: int = 0
    amount: int = 0  # minor units
    refunded_count: int = 0
    refunded_amount: int = 0


@dataclass(frozen=True)
class Movements:
    """Points that moved in a period, by group. Debits are positive numbers here; adjusted is signed."""

    issued: int = 0
    redeemed: int = 0  # net of cancelled redemptions
    expired: int = 0
    reversed: int = 0  # refunds and manual reversals
    adjusted: int = 0
    net: int = 0  # the sum of every entry's delta

    @property
    def computed_net(self) -> int:
        return self.issued - self.redeemed - self.expired - self.reversed + self.adjusted

    @property
    def identity_holds(self) -> bool:
        return self.computed_net == self.net

    @classmethod
    def from_kind_sums(cls, sums: dict[str, int]) -> "Movements":
        def total(kinds):
            return sum(sums.get(kind, 0) for kind in kinds)

        return cls(
            issued=total(ISSUED), redeemed=-total(REDEEMED), expired=-total(EXPIRED),
            reversed=-total(REVERSED), adjusted=total(ADJUSTED), net=sum(sums.values()),
        )


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    sales: Sales
    points: Movements


@dataclass(frozen=True)
class Discrepancy:
    """One thing that does not add up, with the admin page where it can be looked at."""

    kind: str
    day: dt.date | None  # the merchant's local date; None for "as of now" (card balances)
    subject: str
    detail: str
    admin_url: str

    @property
    def title(self) -> str:
        return DISCREPANCY_TITLES[self.kind]


DISCREPANCY_TITLES = {
    "missing_earn_entry": "Purchase without its earn entry",
    "entry_without_purchase": "Points entry without a purchase",
    "unmatched_purchase": "Unmatched purchase (no card, not claimed)",
    "balance_mismatch": "Card balance differs from its entries",
    "webhook_failed": "POS webhook delivery failed",
}


@dataclass(frozen=True)
class ReconciliationReport:
    merchant: Merchant
    store: Store | None
    start: dt.date
    end: dt.date
    sales: Sales
    points: Movements
    days: list[DayRow]
    discrepancies: list[Discrepancy]
    discrepancy_counts: dict[str, int] = field(default_factory=dict)  # kind -> all found, listed or not

    @property
    def discrepancy_total(self) -> int:
        return sum(self.discrepancy_counts.values())

    @property
    def unlisted_discrepancies(self) -> int:
        return self.discrepancy_total - len(self.discrepancies)

    @property
    def adds_up(self) -> bool:
        return self.points.identity_holds and not self.discrepancy_total


def period_bounds(merchant: Merchant, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight of start, local midnight after end) as aware datetimes."""
    zone = zoneinfo.ZoneInfo(merchant.time_zone)
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def local_today(merchant: Merchant) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(merchant.time_zone)).date()


def build_reconciliation(
    merchant: Merchant, start: dt.date, end: dt.date, store: Store | None = None, *,
    listed_per_kind: int = LISTED_PER_KIND,
) -> ReconciliationReport:
    """The merchant's reconciliation for local days `start`..`end`, optionally for one store.

    With a store: its purchases, and the entries made at it or for its purchases (or undoing such an
    entry, like a cancelled counter redemption). Welcome bonuses, expiries and app redemptions have no
    store, so they appear under all stores only. Card balances are checked merchant-wide, as of now.
    """
    if end < start:
        raise ValueError("The period ends before it starts.")
    if store is not None and store.merchant_id != merchant.pk:
        raise ValueError("Not a store of this merchant.")
    scope = _Scope(merchant, store, *period_bounds(merchant, start, end))
    sales_by_day = _sales_by_day(scope)
    sums_by_day, orphan_entries = _entry_sums_by_day(scope)
    days = []
    day = start
    while day <= end:
        days.append(DayRow(day, sales_by_day.get(day, Sales()), Movements.from_kind_sums(sums_by_day.get(day, {}))))
        day += dt.timedelta(days=1)
    all_sums: dict[str, int] = defaultdict(int)
    for sums in sums_by_day.values():
        for kind, total in sums.items():
            all_sums[kind] += total
    discrepancies, counts = [], {}
    for kind, (total, found) in (
        ("missing_earn_entry", _purchases_without_earn_entry(scope, listed_per_kind)),
        ("entry_without_purchase", _entries_without_purchase(scope, listed_per_kind, orphan_entries)),
        ("unmatched_purchase", _unmatched_purchases(scope, listed_per_kind)),
        ("balance_mismatch", _cards_out_of_balance(scope, listed_per_kind)),
        ("webhook_failed", _failed_webhook_deliveries(scope, listed_per_kind)),
    ):
        counts[kind] = total
        discrepancies.extend(found)
    return ReconciliationReport(
        merchant=merchant, store=store, start=start, end=end,
        sales=_sum_sales(sales_by_day.values()), points=Movements.from_kind_sums(all_sums),
        days=days, discrepancies=discrepancies, discrepancy_counts=counts,
    )


@dataclass(frozen=True)
class _Scope:
    merchant: Merchant
    store: Store | None
    since: dt.datetime
    until: dt.datetime

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.merchant.time_zone)

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()

    def purchases(self):
        rows = Purchase.objects.filter(merchant=self.merchant, occurred_at__gte=self.since, occurred_at__lt=self.until)
        return rows.filter(store=self.store) if self.store else rows

    def entries(self):
        rows = LedgerEntry.objects.filter(
            merchant=self.merchant, occurred_at__gte=self.since, occurred_at__lt=self.until
        )
        if self.store:
            # Subqueries, not joins: the purchase ids are a small hashed set, and only a cancelled
            # redemption (no store of its own) looks up the redemption it undoes.
            store_purchases = Purchase.objects.filter(merchant=self.merchant, store=self.store).values("id")
            undoes_here = Exists(
                LedgerEntry.objects.filter(pk=OuterRef("reverses_id"), kind=Kind.REDEEM, store=self.store)
            )
            rows = rows.filter(
                Q(store=self.store) | Q(purchase_id__in=store_purchases)
                | (Q(kind=Kind.REDEMPTION_CANCEL, store__isnull=True) & undoes_here)
            )
        return rows


def _sales_by_day(scope: _Scope) -> dict[dt.date, Sales]:
    rows = (
        scope.purchases().order_by()
        .annotate(day=TruncDate("occurred_at", tzinfo=scope.zone))
        .values("day")
        .annotate(
            count=Count("id"), amount=Sum("amount"),
            refunded_count=Count("id", filter=Q(refunded_amount__gt=0)), refunded_amount=Sum("refunded_amount"),
        )
    )
    return {
        row["day"]: Sales(
            row["count"], int(row["amount"] or 0), row["refunded_count"], int(row["refunded_amount"] or 0)
        )
        for row in rows
    }


def _entry_sums_by_day(scope: _Scope) -> tuple[dict[dt.date, dict[str, int]], int]:
    """Sums per local day and kind, and in the same scan how many earn or refund entries name no
    purchase: on a clean ledger that count is 0 and the listing query never runs."""
    orphan = Q(kind__in=PURCHASE_KINDS, purchase__isnull=True)
    if scope.store:
        orphan &= Q(store=scope.store)
    rows = (
        scope.entries().order_by()
        .annotate(day=TruncDate("occurred_at", tzinfo=scope.zone))
        .values("day", "kind")
        # COUNT(kind), not COUNT(id): only columns an index on (merchant, occurred_at) could cover.
        .annotate(total=Sum("delta"), orphans=Count("kind", filter=orphan))
    )
    sums: dict[dt.date, dict[str, int]] = defaultdict(dict)
    orphans = 0
    for row in rows:
        sums[row["day"]][row["kind"]] = int(row["total"])  # PostgreSQL sums bigints as numeric
        orphans += row["orphans"]
    return sums, orphans


def _sum_sales(rows) -> Sales:
    rows = list(rows)
    return Sales(
        count=sum(r.count for r in rows), amount=sum(r.amount for r in rows),
        refunded_count=sum(r.refunded_count for r in rows), refunded_amount=sum(r.refunded_amount for r in rows),
    )


# Discrepancies: each returns (how many there are, the first `limit` of them, oldest first).


def _admin_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _money(amount: int, currency: str) -> str:
    return f"{to_major_units(amount, currency)} {currency}"


def _purchases_without_earn_entry(scope: _Scope, limit: int):
    earn = LedgerEntry.objects.filter(purchase=OuterRef("pk"), kind=Kind.EARN)
    rows = (
        scope.purchases().filter(card__isnull=False, points_earned__gt=0).filter(~Exists(earn))
        .select_related("card").order_by("occurred_at", "id")
    )
    return rows.count(), [
        Discrepancy(
            "missing_earn_entry", scope.local_day(p.occurred_at), f"Purchase {p.external_id}",
            f"Card {p.card.number} was credited {p.points_earned} points for {_money(p.amount, p.currency)} "
            "in the purchase record, but no earn entry exists.",
            _admin_url(p),
        )
        for p in rows[:limit]
    ]


def _entries_without_purchase(scope: _Scope, limit: int, known_count: int):
    if not known_count:
        return 0, []
    rows = LedgerEntry.objects.filter(
        merchant=scope.merchant, occurred_at__gte=scope.since, occurred_at__lt=scope.until,
        kind__in=PURCHASE_KINDS, purchase__isnull=True,
    )
    if scope.store:
        rows = rows.filter(store=scope.store)
    rows = rows.select_related("card").order_by("occurred_at", "id")
    return known_count, [
        Discrepancy(
            "entry_without_purchase", scope.local_day(e.occurred_at), f"Ledger entry #{e.pk}",
            f"{e.get_kind_display()} of {e.delta:+d} points on card {e.card.number} points to no purchase.",
            _admin_url(e),
        )
        for e in rows[:limit]
    ]


def _unmatched_purchases(scope: _Scope, limit: int):
    rows = scope.purchases().filter(card__isnull=True, claimed_at__isnull=True).order_by("occurred_at", "id")
    return rows.count(), [
        Discrepancy(
            "unmatched_purchase", scope.local_day(p.occurred_at), f"Purchase {p.external_id}",
            f"{_money(p.amount, p.currency)} sale matched to no card and not claimed"
            + (f" (receipt {p.receipt_code})." if p.receipt_code else "."),
            _admin_url(p),
        )
        for p in rows[:limit]
    ]


def _cards_out_of_balance(scope: _Scope, limit: int):
    """Merchant-wide and as of now: a wrong cached balance is wrong whatever the period or store.

    One query: the merchant's entries summed per card first (one pass, hashed), then joined to its
    cards, so cards without any entry but a non-zero balance are caught too. This is the report's one
    scan over all of the merchant's history; see the README for the index that makes it index-only.
    """
    sql = f"""
        SELECT c.id, c.number, c.balance, COALESCE(s.total, 0), COUNT(*) OVER ()
        FROM {Card._meta.db_table} c
        LEFT JOIN (
            SELECT card_id, SUM(delta) AS total FROM {LedgerEntry._meta.db_table}
            WHERE merchant_id = %s GROUP BY card_id
        ) s ON s.card_id = c.id
        WHERE c.merchant_id = %s AND c.balance <> COALESCE(s.total, 0)
        ORDER BY c.id
        LIMIT %s
    """  # noqa: S608 - table names come from model metadata; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [scope.merchant.pk, scope.merchant.pk, limit])
        found = cursor.fetchall()
    total = found[0][4] if found else 0
    return total, [
        Discrepancy(
            "balance_mismatch", None, f"Card {number}",
            f"Cached balance {balance}, its entries sum to {int(summed)} (difference {balance - int(summed):+d}).",
            reverse("admin:wallet_card_change", args=[card_id]),
        )
        for card_id, number, balance, summed, _total in found
    ]


def _failed_webhook_deliveries(scope: _Scope, limit: int):
    rows = WebhookDelivery.objects.filter(
        connection__merchant=scope.merchant, status=WebhookDelivery.Status.FAILED,
        received_at__gte=scope.since, received_at__lt=scope.until,
    )
    if scope.store:  # a connection without a store may carry any store's sales: keep it in view
        rows = rows.filter(Q(connection__store=scope.store) | Q(connection__store__isnull=True))
    rows = rows.select_related("connection").order_by("received_at", "id")
    return rows.count(), [
        Discrepancy(
            "webhook_failed", scope.local_day(d.received_at), f"Webhook delivery #{d.pk}",
            f"From {d.connection.name} ({d.connection.connector}), {d.attempts} attempt(s): "
            f"{(d.error or 'no error recorded').splitlines()[0][:200]}",
            _admin_url(d),
        )
        for d in rows[:limit]
    ]
