"""Refunds: the money goes back, and so do the points the purchase earned, pro rata."""
import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from merchants.models import Program
from wallet import rules
from wallet.errors import RefundExceedsPurchase, RequestInProgress
from wallet.events import emit_card_event
from wallet.idempotency import run_idempotent
from wallet.ledger import EntryDraft, append_entry, lock_card
from wallet.models import LedgerEntry, Purchase, Redemption
from wallet.services.validation import require_positive_amount


@dataclass(frozen=True)
class RefundResult:
    purchase_id: int
    card_id: int | None  # None: an unmatched sale (no card, no points to reverse)
    entry_id: int | None
    refunded_amount: int
    points_reversed: int
    balance: int | None
    points_returned: int = 0  # points spent on rewards used on this sale, given back by this refund
    replayed: bool = field(default=False, compare=False)


def refund_purchase(
    purchase: Purchase,
    *,
    amount: int | None,
    idempotency_key: str,
    source: str = "api",
    actor=None,
    occurred_at: dt.datetime | None = None,
) -> RefundResult:
    """Refund `amount` minor units of a purchase (None: all that remains) and reverse its points.

    Reversal is pro rata on the running refunded total (see rules.reversal_due), so any sequence of
    partial refunds adding up to the whole reverses exactly what was earned, and never more. Under
    the floor-at-zero policy a reversal stops at a zero balance; the shortfall is tried again on a
    later refund of the same purchase. Points the customer spent on rewards used on this sale come
    back by the same rule (return_spent_points).
    """
    if amount is not None:
        require_positive_amount(amount)
    occurred_at = occurred_at or timezone.now()

    def work() -> dict:
        # Lock order: card, then purchase. A sale with no card is read under lock to learn that.
        card_id = Purchase.objects.values_list("card_id", flat=True).get(pk=purchase.pk)
        locked = lock_card(card_id) if card_id is not None else None
        current = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if current.card_id != card_id:  # claimed between the two reads: judge it afresh
            raise RequestInProgress()
        remaining = current.amount - current.refunded_amount
        refund_amount = remaining if amount is None else amount
        if refund_amount <= 0 or refund_amount > remaining:
            raise RefundExceedsPurchase(
                f"{remaining} of {current.amount} remains refundable.", fields={"amount": [f"At most {remaining}."]}
            )
        current.refunded_amount += refund_amount
        if locked is None:
            return _refund_unmatched(current)
        # First, so a floor-at-zero reversal below counts the points that came back.
        returned = return_spent_points(locked, current, occurred_at=occurred_at, source=source, actor=actor)
        due = rules.reversal_due(
            current.points_earned, current.amount, current.refunded_amount, current.points_reversed
        )
        if locked.program.refund_policy == Program.RefundPolicy.FLOOR_AT_ZERO:
            due = min(due, max(locked.balance, 0))
        entry = None
        if due > 0:
            earned = current.entries.get(kind=LedgerEntry.Kind.EARN)
            entry = append_entry(
                locked,
                EntryDraft(
                    kind=LedgerEntry.Kind.REFUND,
                    delta=-due,
                    lifetime_delta=-due,
                    occurred_at=occurred_at,
                    purchase_id=current.pk,
                    store_id=current.store_id,
                    reverses_id=earned.pk,
                    source=source,
                    actor_id=getattr(actor, "pk", None),
                ),
            )
            current.points_reversed += due
        fully = current.refunded_amount == current.amount
        current.status = Purchase.Status.REFUNDED if fully else Purchase.Status.PARTIALLY_REFUNDED
        current.save(update_fields=["refunded_amount", "points_reversed", "status"])
        emit_card_event(
            locked,
            "wallet.purchase.refunded",
            occurred_at=occurred_at,
            payload={
                "purchase_id": current.pk,
                "external_id": current.external_id,
                "refund_amount": refund_amount,
                "currency": current.currency,
                "refunded_amount": current.refunded_amount,
                "points_reversed": due,
                "points_returned": returned,
            },
        )
        return {
            "purchase_id": current.pk,
            "card_id": locked.pk,
            "entry_id": entry.pk if entry else None,
            "refunded_amount": current.refunded_amount,
            "points_reversed": due,
            "balance": locked.balance,
            "points_returned": returned,
        }

    result, replayed = run_idempotent(
        merchant_id=purchase.merchant_id,
        key=idempotency_key,
        operation="refund_purchase",
        request={"purchase_id": purchase.pk, "amount": amount},
        work=work,
    )
    return RefundResult(**result, replayed=replayed)


def return_spent_points(card, purchase: Purchase, *, occurred_at, source: str, actor) -> int:
    """Give back the points spent on rewards used on this sale, pro rata to what is refunded so far.

    Same running-total rule as the earn reversal (rules.reversal_due), so partial refunds adding up
    to the whole return exactly the reward's cost, and a refund that moves no more money returns
    nothing more. Runs under the card's and the purchase's locks; each redemption is locked too, and
    its points_returned (checked <= points by the database) is what makes the return happen once.
    Only coupons on this card: the sale's card is the one whose points paid for the reward.
    """
    used_here = (
        Redemption.objects.select_for_update()
        .filter(merchant_id=purchase.merchant_id, sale_external_id=purchase.external_id, card_id=card.pk,
                status=Redemption.Status.USED)
        .order_by("pk")
    )
    returned = 0
    for redemption in used_here:
        due = rules.reversal_due(redemption.points, purchase.amount, purchase.refunded_amount,
                                 redemption.points_returned)
        if due <= 0:
            continue
        debit = redemption.entries.get(kind=LedgerEntry.Kind.REDEEM)
        append_entry(
            card,
            EntryDraft(
                kind=LedgerEntry.Kind.REDEMPTION_CANCEL,
                delta=due,
                occurred_at=occurred_at,
                purchase_id=purchase.pk,
                redemption_id=redemption.pk,
                store_id=debit.store_id or purchase.store_id,
                reverses_id=debit.pk,
                source=source,
                actor_id=getattr(actor, "pk", None),
            ),
        )
        redemption.points_returned += due
        redemption.save(update_fields=["points_returned"])
        emit_card_event(
            card,
            "wallet.redemption.cancelled",
            occurred_at=occurred_at,
            payload={"redemption_id": redemption.pk, "points_returned": due, "reason": "sale_refunded",
                     "purchase_id": purchase.pk},
        )
        returned += due
    return returned


def _refund_unmatched(current: Purchase) -> dict:
    """A sale no card claimed: the money goes back, no points moved, so none come back."""
    fully = current.refunded_amount == current.amount
    current.status = Purchase.Status.REFUNDED if fully else Purchase.Status.PARTIALLY_REFUNDED
    current.save(update_fields=["refunded_amount", "status"])
    return {
        "purchase_id": current.pk, "card_id": None, "entry_id": None, "refunded_amount": current.refunded_amount,
        "points_reversed": 0, "balance": None,
    }
