"""How many points will expire by a future time, for many cards at once.

The forecast mirrors `wallet.ledger.expirable_points_now` exactly: the same four sums over a card's
entries (filters below), the same rule (`rules.expirable_points`, earliest-expiring points spent
first) and the card's current balance. So what it says expires by T is what `expire_points(card,
now=T)` would expire if nothing else happened until T. Sums are computed in SQL, grouped by card.

Two shapes, one per caller:
- `expiring_by_card(horizons, **card_lookups)`: one row per card with the points expiring by each fixed
  horizon, a grouped queryset that a report can extend and sum in the database (the liability
  report: "what leaves the books in the next 7, 30, 90 days").
- `forecast_cards(now=, until=, **card_lookups)`: per card, the lots expiring between now and `until`, so the
  expiry warning can name the date and the points of a card's next expiry.
"""
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import BigIntegerField, F, FilteredRelation, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Least

from wallet import rules
from wallet.models import LedgerEntry

# The entry a correction (a refund, a cancelled redemption, a reversal) reverses, joined under this name.
REVERSED = "reversed_entry"

# The four sums of `expirable_points_now`, with the same conditions, so the two can never disagree.
LOT = Q(delta__gt=0, expires_at__isnull=False)
LOT_REVERSAL = Q(reversed_entry__delta__gt=0, reversed_entry__expires_at__isnull=False)
DEBIT = Q(delta__lt=0) & ~LOT_REVERSAL
DEBIT_REVERSAL = Q(delta__gt=0, reversed_entry__delta__lt=0)

_POINTS = BigIntegerField()


def _sum(condition: Q):
    return Coalesce(Sum("delta", filter=condition), Value(0), output_field=_POINTS)


def entries_of_cards(**card_lookups) -> QuerySet[LedgerEntry]:
    """Entries of the cards matching `card_lookups` (Card lookups: program=..., balance__gt=0, ...), each
    with the entry it reverses joined as REVERSED.

    The join is limited to entries that these cards' corrections reverse: corrections are few, so the
    database joins a small set instead of hashing the whole ledger (twice as fast on 10^6 entries).
    """
    lookups = {f"card__{lookup}": value for lookup, value in card_lookups.items()}
    corrected = LedgerEntry.objects.filter(reverses__isnull=False, **lookups).order_by().values("reverses_id")
    return (
        LedgerEntry.objects.filter(**lookups)
        .annotate(**{REVERSED: FilteredRelation("reverses", condition=Q(reverses__id__in=Subquery(corrected)))})
        .order_by()
    )


def expiring_by_card(horizons: Mapping[str, dt.datetime], **card_lookups) -> QuerySet:
    """One row per card (with entries) matching `card_lookups`: `card_id` and, for each horizon label,
    the points expiring by then. A caller may add its own sums (through REVERSED for the reversed
    entry) and aggregate the rows in the database.

    The clamp max(0, min(balance, due - spent)) is `rules.expirable_points` written in SQL.
    """
    sums = {"debits": _sum(DEBIT), "debit_reversals": _sum(DEBIT_REVERSAL)}
    for label, when in horizons.items():
        sums[f"{label}__lots"] = _sum(LOT & Q(expires_at__lte=when))
        sums[f"{label}__lot_reversals"] = _sum(LOT_REVERSAL & Q(reversed_entry__expires_at__lte=when))
    rows = entries_of_cards(**card_lookups).values("card_id", "card__balance").annotate(**sums)
    spent = F("debits") + F("debit_reversals")  # debits are negative, their reversals positive
    return rows.annotate(**{
        label: Greatest(
            Value(0),
            Least(F("card__balance"), F(f"{label}__lots") + F(f"{label}__lot_reversals") + spent),
            output_field=_POINTS,
        )
        for label in horizons
    })


@dataclass(frozen=True)
class CardExpiryForecast:
    """One card's expiry outlook from `as_of` to `until`: what is already due, what is spent, and the
    lots (net of their reversals) that reach their expiry in between, earliest first."""

    card_id: int
    balance: int
    as_of: dt.datetime
    until: dt.datetime
    lots_due: int
    lot_reversals_due: int
    debits: int
    debit_reversals: int
    upcoming: tuple[tuple[dt.datetime, int], ...]  # (expires_at, lots + their reversals), ascending

    def expiring_by(self, when: dt.datetime) -> int:
        """Points expired by `when` (as_of <= when <= until) if nothing else happens: equals
        expirable_points_now(card, when) for the card as it is at `as_of`."""
        if not self.as_of <= when <= self.until:
            raise ValueError("A forecast answers only between its as_of and until times.")
        maturing = sum(points for expires_at, points in self.upcoming if expires_at <= when)
        return rules.expirable_points(
            lots_due=self.lots_due + maturing,
            lot_reversals_due=self.lot_reversals_due,
            debits=self.debits,
            debit_reversals=self.debit_reversals,
            balance=self.balance,
        )

    def next_expiry(self) -> tuple[dt.datetime, int] | None:
        """The earliest upcoming expiry at which points actually leave the card, and how many.

        Points already past their expiry (waiting for the hourly expiry job) are not counted: they
        leave at the job's next run, not at this date. A lot whose points were spent is skipped.
        """
        already_due = self.expiring_by(self.as_of)
        for expires_at, _points in self.upcoming:
            points = self.expiring_by(expires_at) - already_due
            if points > 0:
                return expires_at, points
        return None


def forecast_cards(*, now: dt.datetime, until: dt.datetime, **card_lookups) -> list[CardExpiryForecast]:
    """Forecasts from `now` to `until` for every card with entries matching `card_lookups`, in three
    grouped queries whatever the number of cards."""
    entries = entries_of_cards(**card_lookups)
    base = entries.values("card_id", "card__balance").annotate(
        lots_due=_sum(LOT & Q(expires_at__lte=now)),
        lot_reversals_due=_sum(LOT_REVERSAL & Q(reversed_entry__expires_at__lte=now)),
        debits=_sum(DEBIT),
        debit_reversals=_sum(DEBIT_REVERSAL),
    )
    lots = (
        entries.filter(LOT, expires_at__gt=now, expires_at__lte=until)
        .values_list("card_id", "expires_at").annotate(points=Sum("delta"))
    )
    # A refund of a lot shrinks that lot, so it counts at the lot's own expiry.
    lot_reversals = (
        entries.filter(LOT_REVERSAL, reversed_entry__expires_at__gt=now, reversed_entry__expires_at__lte=until)
        .values_list("card_id", "reversed_entry__expires_at").annotate(points=Sum("delta"))
    )
    upcoming: dict[int, dict[dt.datetime, int]] = defaultdict(lambda: defaultdict(int))
    for card_id, expires_at, points in [*lots, *lot_reversals]:
        upcoming[card_id][expires_at] += points
    return [
        CardExpiryForecast(
            card_id=row["card_id"],
            balance=row["card__balance"],
            as_of=now,
            until=until,
            lots_due=row["lots_due"],
            lot_reversals_due=row["lot_reversals_due"],
            debits=row["debits"],
            debit_reversals=row["debit_reversals"],
            upcoming=tuple(sorted(upcoming[row["card_id"]].items())),
        )
        for row in base.order_by("card_id")
    ]
