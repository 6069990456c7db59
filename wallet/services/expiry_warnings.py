"""Expiry warnings: a customer hears, before points expire, how many and when.

Each program says how many days ahead to warn (`expiry_warning_days`; empty: never). A card is warned
once per expiry date: the `ExpiryWarning` row and the `wallet.points.expiring` outbox event are
written in one transaction, and the unique (card, expires_at) constraint makes a second run, or a
second worker running at the same moment, write neither. The outbox event is how the warning leaves
Tessera (CRM connectors ship it); the customer's own channels and consent belong to engagement.

Cost: one scan for lots entering the window that nobody was warned about, then the forecast of those
cards only, a thousand at a time; warned cards are not read again, so the hourly run stays cheap.
"""
import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from merchants.models import Program
from wallet.events import emit_card_event
from wallet.expiry_forecast import CardExpiryForecast, forecast_cards
from wallet.models import Card, ExpiryWarning, LedgerEntry

EVENT_TYPE = "wallet.points.expiring"
# Cards forecast per round of queries: bounded memory and SQL parameters (SQLite allows 32766) however
# many cards a first run finds.
CARDS_PER_BATCH = 1000


@dataclass(frozen=True)
class ExpiryWarningResult:
    card_id: int
    warning_id: int
    points: int
    expires_at: dt.datetime
    expires_on: dt.date  # the merchant's local date at whose end the points expire


def warn_expiring_points(now: dt.datetime | None = None) -> list[ExpiryWarningResult]:
    """Warn every active card whose next expiry inside its program's warning window takes points.

    Returns the warnings written by this call (none for cards already warned for that date).
    """
    now = now or timezone.now()
    programs = (
        Program.objects.filter(points_validity_days__isnull=False, expiry_warning_days__isnull=False)
        .select_related("merchant")
        .order_by("pk")
    )
    results = []
    for program in programs:
        results.extend(_warn_program(program, now))
    return results


def _warn_program(program: Program, now: dt.datetime) -> list[ExpiryWarningResult]:
    until = now + dt.timedelta(days=program.expiry_warning_days)
    results = []
    candidates = _candidate_card_ids(program, now, until)
    for start in range(0, len(candidates), CARDS_PER_BATCH):
        results.extend(_warn_cards(program, candidates[start:start + CARDS_PER_BATCH], now, until))
    return results


def _candidate_card_ids(program: Program, now: dt.datetime, until: dt.datetime) -> list[int]:
    """Active cards with points and a lot expiring inside the window that nobody was warned about.

    A card already warned for every date in its window has nothing new to hear, so the hourly run
    reads it no further: in a steady state only lots that newly entered the window are looked at.
    """
    unwarned_lots = LedgerEntry.objects.filter(
        card__program=program, delta__gt=0, expires_at__gt=now, expires_at__lte=until
    ).exclude(Exists(ExpiryWarning.objects.filter(card_id=OuterRef("card_id"), expires_at=OuterRef("expires_at"))))
    return list(
        Card.objects.filter(
            program=program, status=Card.Status.ACTIVE, balance__gt=0, pk__in=unwarned_lots.values("card_id")
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _warn_cards(
    program: Program, card_ids: list[int], now: dt.datetime, until: dt.datetime
) -> list[ExpiryWarningResult]:
    """Warn those of `card_ids` whose next expiry takes points and was not warned yet."""
    due = {}
    for forecast in forecast_cards(now=now, until=until, pk__in=card_ids):
        expiry = forecast.next_expiry()
        if expiry is not None:
            due[forecast.card_id] = (forecast, *expiry)
    already_warned = set(
        ExpiryWarning.objects.filter(card_id__in=list(due), expires_at__gt=now, expires_at__lte=until)
        .values_list("card_id", "expires_at")
    )
    to_warn = {card_id: found for card_id, found in due.items() if (card_id, found[1]) not in already_warned}
    cards = Card.objects.select_related("wallet").in_bulk(list(to_warn))
    results = []
    # One commit per batch (each card in its own savepoint): a first run over many cards is not paced
    # by a commit per warning.
    with transaction.atomic():
        for card_id, (forecast, expires_at, points) in sorted(to_warn.items()):
            result = _warn_card(program, cards[card_id], forecast, expires_at, points, now)
            if result is not None:
                results.append(result)
    return results


def _warn_card(
    program: Program,
    card: Card,
    forecast: CardExpiryForecast,
    expires_at: dt.datetime,
    points: int,
    now: dt.datetime,
) -> ExpiryWarningResult | None:
    """Record and announce one warning, or nothing if another run got there first."""
    expires_on = last_local_day(expires_at, program.merchant.time_zone)
    try:
        with transaction.atomic():
            warning = ExpiryWarning.objects.create(card=card, expires_at=expires_at, points=points)
            emit_card_event(
                card,
                EVENT_TYPE,
                occurred_at=now,
                payload={
                    "program_id": program.pk,
                    "points": points,
                    "expires_at": expires_at.isoformat(),
                    "expires_on": expires_on.isoformat(),
                    "time_zone": program.merchant.time_zone,
                    "balance": forecast.balance,
                },
            )
    except IntegrityError:
        # The unique (card, expires_at) constraint: another run warned this card for this date.
        if ExpiryWarning.objects.filter(card=card, expires_at=expires_at).exists():
            return None
        raise
    return ExpiryWarningResult(
        card_id=card.pk, warning_id=warning.pk, points=points, expires_at=expires_at, expires_on=expires_on
    )


def last_local_day(expires_at: dt.datetime, time_zone: str) -> dt.date:
    """The merchant's local date on which points expiring at `expires_at` can last be spent.

    Lots expire at a local midnight (the end of their last day), so the date a customer reads is the
    day before that midnight, not the midnight's own date.
    """
    return (expires_at - dt.timedelta(microseconds=1)).astimezone(zoneinfo.ZoneInfo(time_zone)).date()
