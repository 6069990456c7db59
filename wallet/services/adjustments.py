"""Manual adjustments: a signed correction with a reason and the person who made it."""
import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from wallet.errors import CardClosed, InsufficientPoints, InvalidRequest
from wallet.idempotency import run_idempotent
from wallet.ledger import EntryDraft, append_entry, credit_expiry, lock_card
from wallet.models import Card, LedgerEntry
from wallet.services.validation import MAX_POINTS_DELTA, require_text


@dataclass(frozen=True)
class AdjustmentResult:
    entry_id: int
    card_id: int
    delta: int
    balance: int
    replayed: bool = field(default=False, compare=False)


def adjust_points(
    card: Card,
    *,
    delta: int,
    reason: str,
    actor,
    idempotency_key: str,
    source: str = "admin",
    occurred_at: dt.datetime | None = None,
    store_id: int | None = None,
) -> AdjustmentResult:
    """Add or remove points by hand. A removal never takes the balance below zero; added points
    expire like earned ones. Adjustments do not count toward tiers (lifetime points are earned)."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_POINTS_DELTA:
        raise InvalidRequest(
            f"delta must be a non-zero whole number of points, at most {MAX_POINTS_DELTA} either way.",
            fields={"delta": ["Invalid."]},
        )
    require_text(reason, "reason", 255)
    occurred_at = occurred_at or timezone.now()

    def work() -> dict:
        locked = lock_card(card.pk)
        if not locked.is_active:
            raise CardClosed()
        if locked.balance + delta < 0:
            raise InsufficientPoints(f"The card has only {locked.balance} points to remove.")
        expires_at = credit_expiry(locked, occurred_at) if delta > 0 else None
        entry = append_entry(
            locked,
            EntryDraft(
                kind=LedgerEntry.Kind.ADJUST,
                delta=delta,
                occurred_at=occurred_at,
                expires_at=expires_at,
                reason=reason.strip(),
                actor_id=getattr(actor, "pk", None),
                source=source,
                store_id=store_id,
            ),
        )
        return {"entry_id": entry.pk, "card_id": locked.pk, "delta": delta, "balance": locked.balance}

    result, replayed = run_idempotent(
        merchant_id=card.merchant_id,
        key=idempotency_key,
        operation="adjust_points",
        request={"card_id": card.pk, "delta": delta, "reason": reason, "actor_id": getattr(actor, "pk", None)},
        work=work,
    )
    return AdjustmentResult(**result, replayed=replayed)
