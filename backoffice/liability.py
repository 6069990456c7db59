"""Points liability: what the points on customers' cards are worth, how much of that history says will
never be redeemed (breakage), and what expires soon. For an owner and an accountant, per program.

Money is exact: points x the program's `point_value` (minor units per point) as a Decimal, rounded
once per program to whole minor units, half up; totals add the rounded program figures so the page
always adds up. Breakage is estimated per program from the trailing 365 days of the ledger:

    breakage rate = points expired / (points expired + points redeemed, net of cancellations)

and is None, with the reason, when history cannot tell (never a silent 0). Every figure is a SQL
aggregate (a few queries per merchant, one more per program), so the page stays fast on millions of
entries.
"""
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from core.money import to_major_units
from merchants.models import Merchant, Program
from wallet.expiry_forecast import expiring_by_card
from wallet.models import Card, LedgerEntry

HISTORY_DAYS = 365
EXPIRY_HORIZON_DAYS = (7, 30, 90)

_Kind = LedgerEntry.Kind
# Reinstating expired points or returning redeemed ones (a `reversal` entry) counts against them. The
# reversed entry is the forecast's REVERSED join, so one pass over the entries serves both.
_EXPIRED = Q(kind=_Kind.EXPIRE) | Q(kind=_Kind.REVERSAL, reversed_entry__kind=_Kind.EXPIRE)
_REDEMPTION_KINDS = (_Kind.REDEEM, _Kind.REDEMPTION_CANCEL)
_REDEEMED = Q(kind__in=_REDEMPTION_KINDS) | Q(kind=_Kind.REVERSAL, reversed_entry__kind__in=_REDEMPTION_KINDS)

EXPLANATION = (
    f"Breakage is estimated per program from the last {HISTORY_DAYS} days: points that expired divided by "
    "points that expired plus points redeemed (net of cancelled redemptions), applied to today's outstanding points."
)


def round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Money:
    minor: int
    currency: str

    @property
    def major(self) -> Decimal:
        return to_major_units(self.minor, self.currency)

    def __str__(self) -> str:
        return f"{self.major:,} {self.currency}"

    def __add__(self, other: "Money") -> "Money":
        if other.currency != self.currency:
            raise ValueError("Cannot add amounts in different currencies.")
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        return self + Money(-other.minor, other.currency)


@dataclass(frozen=True)
class Breakage:
    """What history says about a program's points that will never be redeemed."""

    rate: Decimal | None  # expired / (expired + net redeemed); None: not enough history
    expired_points: int
    redeemed_points: int
    note: str = ""  # why there is no rate, or what a rate of 0 means

    @property
    def has_history(self) -> bool:
        return self.rate is not None

    @property
    def percent(self) -> Decimal | None:
        return None if self.rate is None else (self.rate * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LiabilityLine:
    """One program's figures, or the merchant's total (program None)."""

    title: str
    program: Program | None
    point_value: Decimal | None
    cards_with_points: int
    outstanding_points: int  # the sum of positive balances only
    value: Money
    negative_balance_cards: int
    negative_balance_points: int  # the sum of negative balances (<= 0), owed to the merchant, not netted
    breakage: Breakage | None  # None on the total line: rates are per program
    expected_breakage_points: int | None  # None: not estimated (not enough history)
    expected_breakage_value: Money | None
    net_value: Money  # value less expected breakage; a program without an estimate counts in full
    expiring_points: dict[int, int]  # days ahead -> points expiring by then if nothing else happens

    @property
    def point_value_text(self) -> str:
        """The point value without trailing zeros: "1", "0.25", "10" (never "1E+1")."""
        return "" if self.point_value is None else format(self.point_value.normalize(), "f")

    @property
    def expiring(self) -> list[tuple[int, int]]:
        """(days ahead, points), nearest first: what a template can loop over."""
        return sorted(self.expiring_points.items())


@dataclass(frozen=True)
class LiabilityReport:
    merchant: Merchant
    as_of: dt.datetime
    programs: list[LiabilityLine]
    total: LiabilityLine
    unestimated_programs: list[str]  # names of programs whose breakage history cannot tell
    history_days: int = HISTORY_DAYS
    horizons: tuple[int, ...] = EXPIRY_HORIZON_DAYS
    explanation: str = EXPLANATION

    @property
    def lines(self) -> list[LiabilityLine]:
        """The program lines, then the total."""
        return [*self.programs, self.total]


def build_liability(merchant: Merchant, now: dt.datetime | None = None) -> LiabilityReport:
    now = now or timezone.now()
    programs = list(Program.objects.filter(merchant=merchant).order_by("name", "pk"))
    balances = _balances_by_program(merchant)
    lines = []
    for program in programs:
        activity = _program_activity(program, now)
        breakage = estimate_breakage(program, activity.expired, activity.redeemed, matured=activity.matured)
        lines.append(
            _program_line(program, merchant.currency, balances.get(program.pk, {}), breakage, activity.expiring)
        )
    return LiabilityReport(
        merchant=merchant,
        as_of=now,
        programs=lines,
        total=_total_line(lines, merchant.currency),
        unestimated_programs=[line.title for line in lines if line.expected_breakage_points is None],
    )


def estimate_breakage(program: Program, expired: int, redeemed: int, *, matured: bool) -> Breakage:
    """The share of points history says will expire unredeemed, or None with the reason."""
    expired, redeemed = max(0, expired), max(0, redeemed)
    if expired + redeemed == 0:
        return Breakage(None, expired, redeemed, f"No points expired or were redeemed in the last {HISTORY_DAYS} days.")
    if expired == 0 and program.points_validity_days is not None and not matured:
        return Breakage(None, expired, redeemed, f"No points reached their expiry date in the last {HISTORY_DAYS} "
                                                 "days, so history cannot tell yet what share will expire.")
    note = "Points of this program never expire." if program.points_validity_days is None and not expired else ""
    return Breakage(Decimal(expired) / Decimal(expired + redeemed), expired, redeemed, note)


def _program_line(program: Program, currency: str, balances: dict, breakage: Breakage, expiring: dict) -> LiabilityLine:
    outstanding = balances.get("outstanding") or 0
    value = Money(round_half_up(outstanding * program.point_value), currency)
    breakage_points = breakage_value = None
    net_value = value
    if breakage.rate is not None:
        breakage_points = round_half_up(outstanding * breakage.rate)
        breakage_value = Money(round_half_up(breakage_points * program.point_value), currency)
        net_value = value - breakage_value
    return LiabilityLine(
        title=program.name,
        program=program,
        point_value=program.point_value,
        cards_with_points=balances.get("cards_with_points") or 0,
        outstanding_points=outstanding,
        value=value,
        negative_balance_cards=balances.get("negative_cards") or 0,
        negative_balance_points=balances.get("negative_points") or 0,
        breakage=breakage,
        expected_breakage_points=breakage_points,
        expected_breakage_value=breakage_value,
        net_value=net_value,
        expiring_points=dict(expiring),
    )


def _total_line(lines: list[LiabilityLine], currency: str) -> LiabilityLine:
    zero = Money(0, currency)
    estimated = [line for line in lines if line.expected_breakage_points is not None]
    return LiabilityLine(
        title="Total",
        program=None,
        point_value=None,
        cards_with_points=sum(line.cards_with_points for line in lines),
        outstanding_points=sum(line.outstanding_points for line in lines),
        value=sum((line.value for line in lines), zero),
        negative_balance_cards=sum(line.negative_balance_cards for line in lines),
        negative_balance_points=sum(line.negative_balance_points for line in lines),
        breakage=None,
        expected_breakage_points=sum(line.expected_breakage_points for line in estimated) if estimated else None,
        expected_breakage_value=sum((line.expected_breakage_value for line in estimated), zero) if estimated else None,
        net_value=sum((line.net_value for line in lines), zero),
        expiring_points={days: sum(line.expiring_points[days] for line in lines) for days in EXPIRY_HORIZON_DAYS},
    )


def _balances_by_program(merchant: Merchant) -> dict[int, dict]:
    """Positive and negative balances kept apart: a card in debt does not shrink what others are owed."""
    rows = (
        Card.objects.filter(merchant=merchant)
        .order_by()
        .values("program_id")
        .annotate(
            cards_with_points=Count("pk", filter=Q(balance__gt=0)),
            outstanding=Sum("balance", filter=Q(balance__gt=0)),
            negative_cards=Count("pk", filter=Q(balance__lt=0)),
            negative_points=Sum("balance", filter=Q(balance__lt=0)),
        )
    )
    return {row["program_id"]: row for row in rows}


@dataclass(frozen=True)
class _Activity:
    expiring: dict[int, int]  # days ahead -> points
    expired: int  # points expired in the history window, net of reinstatements
    redeemed: int  # points redeemed in the history window, net of cancellations
    matured: bool  # some credited points reached their expiry in the window


def _program_activity(program: Program, now: dt.datetime) -> _Activity:
    """Upcoming expiries and the history breakage needs, in one pass over the program's entries.

    `matured` tells "nothing expired because customers spend everything" from "nothing could expire
    yet" (a program younger than its validity): only the first makes a 0 % rate true.
    """
    start = now - dt.timedelta(days=HISTORY_DAYS)
    horizons = {f"days_{days}": now + dt.timedelta(days=days) for days in EXPIRY_HORIZON_DAYS}
    in_window = Q(occurred_at__gt=start, occurred_at__lte=now)
    per_card = expiring_by_card(horizons, program=program).annotate(
        expired=Sum("delta", filter=_EXPIRED & in_window),
        redeemed=Sum("delta", filter=_REDEEMED & in_window),
        matured=Count("pk", filter=Q(delta__gt=0, expires_at__gt=start, expires_at__lte=now)),
    )
    totals = per_card.aggregate(
        **{f"total_{label}": Sum(label) for label in horizons},
        total_expired=Sum("expired"),
        total_redeemed=Sum("redeemed"),
        total_matured=Sum("matured"),
    )
    return _Activity(
        expiring={days: int(totals[f"total_days_{days}"] or 0) for days in EXPIRY_HORIZON_DAYS},
        expired=-int(totals["total_expired"] or 0),
        redeemed=-int(totals["total_redeemed"] or 0),
        matured=bool(totals["total_matured"]),
    )
