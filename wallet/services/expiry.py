"""Expiry: unspent points past their expiry leave the balance through an `expire` entry."""
import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from wallet.events import emit_card_event
from wallet.ledger import EntryDraft, append_entry, expirable_points_now, lock_card
from wallet.models import Card, LedgerEntry


@dataclass(frozen=True)
class ExpiryResult:
    card_id: int
    entry_id: int
    points_expired: int
    balance: int


def expire_points(card: Card, *, now: dt.datetime | None = None) -> ExpiryResult | None:
    """Expire what is due on one card, or nothing. Naturally idempotent: what expired is a debit, so a
    second run at the same moment finds nothing left to expire."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = lock_card(card.pk)
        points = expirable_points_now(locked, now)
        if points <= 0:
            return None
        entry = append_entry(
            locked, EntryDraft(kind=LedgerEntry.Kind.EXPIRE, delta=-points, occurred_at=now, source="system")
        )
        emit_card_event(
            locked,
            "wallet.points.expired",
            occurred_at=now,
            payload={"points_expired": points, "balance": locked.balance},
        )
        return ExpiryResult(card_id=locked.pk, entry_id=entry.pk, points_expired=points, balance=locked.balance)


def expire_due_points(*, now: dt.datetime | None = None) -> list[ExpiryResult]:
    """Expire due points on every card that holds a credit past its expiry, one card per transaction."""
    now = now or timezone.now()
    card_ids = (
        LedgerEntry.objects.filter(delta__gt=0, expires_at__lte=now, card__balance__gt=0)
        .values_list("card_id", flat=True)
        .distinct()
        .order_by("card_id")
    )
    results = []
    for card in Card.objects.filter(pk__in=list(card_ids)).only("pk"):
        result = expire_points(card, now=now)
        if result is not None:
            results.append(result)
    return results
