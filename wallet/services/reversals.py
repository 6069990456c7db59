"""Reversing one chosen ledger entry: the correction a merchant makes for points given by mistake (an
earn on the wrong card, a duplicate adjustment), written as a new entry that names the one it undoes."""
import datetime as dt
from dataclasses import dataclass, field

from django.db import IntegrityError
from django.db.models import Sum
from django.utils import timezone

from wallet.errors import CardClosed, EntryAlreadyReversed, EntryNotReversible, InsufficientPoints
from wallet.idempotency import run_idempotent
from wallet.ledger import EntryDraft, append_entry, lock_card
from wallet.models import LedgerEntry, Purchase
from wallet.services.validation import require_text

# Redemptions are undone by cancelling them, refunds by nothing (the sale was refunded), expiries by a
# fresh adjustment (re-crediting the expired lot would only expire again at the next run).
REVERSIBLE_KINDS = (LedgerEntry.Kind.EARN, LedgerEntry.Kind.WELCOME, LedgerEntry.Kind.ADJUST)
# Points that count toward tiers: undoing them takes them out of lifetime points too, as a refund does.
LIFETIME_KINDS = (LedgerEntry.Kind.EARN, LedgerEntry.Kind.WELCOME)


@dataclass(frozen=True)
class ReversalResult:
    entry_id: int
    reversed_entry_id: int
    card_id: int
    delta: int
    balance: int
    replayed: bool = field(default=False, compare=False)


def reverse_entry(
    entry: LedgerEntry,
    *,
    reason: str,
    actor,
    idempotency_key: str,
    source: str = "admin",
    occurred_at: dt.datetime | None = None,
) -> ReversalResult:
    """Undo what remains of `entry`, once. An earn already partly reversed by refunds is undone only for
    the rest, and its purchase records the points as reversed, so a later refund takes nothing twice.
    A reversal never takes the balance below zero."""
    require_text(reason, "reason", 255)
    occurred_at = occurred_at or timezone.now()

    def work() -> dict:
        locked = lock_card(entry.card_id)
        if not locked.is_active:
            raise CardClosed()
        original = LedgerEntry.objects.get(pk=entry.pk)
        if original.kind not in REVERSIBLE_KINDS:
            raise EntryNotReversible()
        if LedgerEntry.objects.filter(reverses=original, kind=LedgerEntry.Kind.REVERSAL).exists():
            raise EntryAlreadyReversed()
        already = LedgerEntry.objects.filter(reverses=original).aggregate(total=Sum("delta"))["total"] or 0
        remaining = original.delta + already
        if remaining == 0:
            raise EntryAlreadyReversed("Refunds have already reversed all of this entry's points.")
        delta = -remaining
        if locked.balance + delta < 0:
            raise InsufficientPoints(
                f"The card has only {locked.balance} points; reversing this entry needs {-delta}.",
                fields={"balance": [str(locked.balance)]},
            )
        if original.kind == LedgerEntry.Kind.EARN and original.purchase_id:
            purchase = Purchase.objects.select_for_update().get(pk=original.purchase_id)
            purchase.points_reversed += remaining
            purchase.save(update_fields=["points_reversed"])
        reversal = append_entry(
            locked,
            EntryDraft(
                kind=LedgerEntry.Kind.REVERSAL,
                delta=delta,
                lifetime_delta=delta if original.kind in LIFETIME_KINDS else 0,
                occurred_at=occurred_at,
                reverses_id=original.pk,
                purchase_id=original.purchase_id,
                store_id=original.store_id,
                reason=reason.strip(),
                actor_id=getattr(actor, "pk", None),
                source=source,
            ),
        )
        return {"entry_id": reversal.pk, "reversed_entry_id": original.pk, "card_id": locked.pk,
                "delta": delta, "balance": locked.balance}

    try:
        result, replayed = run_idempotent(
            merchant_id=entry.merchant_id,
            key=idempotency_key,
            operation="reverse_entry",
            request={"entry_id": entry.pk, "reason": reason, "actor_id": getattr(actor, "pk", None)},
            work=work,
        )
    except IntegrityError as error:
        if "ledger_entry_reversed_once" in str(error):
            raise EntryAlreadyReversed() from error
        raise
    return ReversalResult(**result, replayed=replayed)
