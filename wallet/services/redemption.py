"""Spending points on a reward (a single-use coupon), using that coupon once, and cancelling an unused one."""
import datetime as dt
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from merchants.models import Reward
from wallet import rules
from wallet.errors import (
    CardClosed,
    CouponNotUsable,
    InsufficientPoints,
    RedemptionNotCancellable,
    RewardUnavailable,
)
from wallet.events import emit_card_event
from wallet.idempotency import run_idempotent
from wallet.ledger import EntryDraft, append_entry, lock_card
from wallet.models import Card, LedgerEntry, Redemption


@dataclass(frozen=True)
class RedemptionResult:
    redemption_id: int
    card_id: int
    entry_id: int
    coupon_code: str
    points: int
    balance: int
    expires_at: str
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class CancellationResult:
    redemption_id: int
    card_id: int
    entry_id: int
    points_returned: int
    balance: int
    replayed: bool = field(default=False, compare=False)


def redeem_reward(
    card: Card,
    reward: Reward,
    *,
    idempotency_key: str,
    source: str = "api",
    actor=None,
    occurred_at: dt.datetime | None = None,
    store_id: int | None = None,
    sale_external_id: str = "",
) -> RedemptionResult:
    """Spend the reward's points and issue its coupon. Never overdraws: the balance is checked under
    the card's row lock, so concurrent redemptions are judged one after another. `store_id`: the
    store of the till that redeemed, for the ledger (none from the app). `sale_external_id` only
    joins the idempotency fingerprint: the till links the coupon to its sale when it hands it over."""
    occurred_at = occurred_at or timezone.now()

    def work() -> dict:
        locked = lock_card(card.pk)
        if not locked.is_active:
            raise CardClosed()
        offered = Reward.objects.select_for_update().filter(pk=reward.pk, program_id=locked.program_id).first()
        if offered is None or not offered.is_active:
            raise RewardUnavailable()
        if offered.stock is not None and offered.stock <= 0:
            raise RewardUnavailable("This reward is out of stock.")
        if locked.balance < offered.points_cost:
            raise InsufficientPoints(
                f"The card has {locked.balance} points; this reward costs {offered.points_cost}.",
                fields={"balance": [str(locked.balance)], "points_cost": [str(offered.points_cost)]},
            )
        if offered.stock is not None:
            Reward.objects.filter(pk=offered.pk).update(stock=F("stock") - 1)
        redemption = _create_redemption(locked, offered, occurred_at)
        entry = append_entry(
            locked,
            EntryDraft(
                kind=LedgerEntry.Kind.REDEEM,
                delta=-offered.points_cost,
                occurred_at=occurred_at,
                redemption_id=redemption.pk,
                store_id=store_id,
                source=source,
                actor_id=getattr(actor, "pk", None),
            ),
        )
        emit_card_event(
            locked,
            "wallet.reward.redeemed",
            occurred_at=occurred_at,
            payload={
                "redemption_id": redemption.pk,
                "reward_id": offered.pk,
                "reward_name": offered.name,
                "points": offered.points_cost,
            },
        )
        return {
            "redemption_id": redemption.pk,
            "card_id": locked.pk,
            "entry_id": entry.pk,
            "coupon_code": redemption.coupon_code,
            "points": redemption.points,
            "balance": locked.balance,
            "expires_at": redemption.expires_at.isoformat(),
        }

    result, replayed = run_idempotent(
        merchant_id=card.merchant_id,
        key=idempotency_key,
        operation="redeem_reward",
        request={"card_id": card.pk, "reward_id": reward.pk}
        | ({"sale_external_id": sale_external_id} if sale_external_id else {}),
        work=work,
    )
    return RedemptionResult(**result, replayed=replayed)


def _create_redemption(card: Card, reward: Reward, occurred_at: dt.datetime) -> Redemption:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Redemption.objects.create(
                    merchant_id=card.merchant_id,
                    card=card,
                    reward=reward,
                    points=reward.points_cost,
                    coupon_code=rules.new_coupon_code(),
                    expires_at=occurred_at + dt.timedelta(days=reward.coupon_valid_days),
                )
        except IntegrityError:
            continue  # a coupon code collision: draw again
    raise RuntimeError("Could not draw an unused coupon code.")


def cancel_redemption(
    redemption: Redemption,
    *,
    idempotency_key: str,
    source: str = "api",
    actor=None,
    occurred_at: dt.datetime | None = None,
) -> CancellationResult:
    """Return an unused coupon's points through a new entry that reverses the redemption's entry."""
    occurred_at = occurred_at or timezone.now()

    def work() -> dict:
        locked = lock_card(redemption.card_id)
        current = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if current.status != Redemption.Status.ISSUED:
            raise RedemptionNotCancellable()
        debit = current.entries.get(kind=LedgerEntry.Kind.REDEEM)
        current.status = Redemption.Status.CANCELLED
        current.cancelled_at = occurred_at
        current.save(update_fields=["status", "cancelled_at"])
        Reward.objects.filter(pk=current.reward_id, stock__isnull=False).update(stock=F("stock") + 1)
        entry = append_entry(
            locked,
            EntryDraft(
                kind=LedgerEntry.Kind.REDEMPTION_CANCEL,
                delta=current.points,
                occurred_at=occurred_at,
                redemption_id=current.pk,
                reverses_id=debit.pk,
                source=source,
                actor_id=getattr(actor, "pk", None),
            ),
        )
        emit_card_event(
            locked,
            "wallet.redemption.cancelled",
            occurred_at=occurred_at,
            payload={"redemption_id": current.pk, "points_returned": current.points},
        )
        return {
            "redemption_id": current.pk,
            "card_id": locked.pk,
            "entry_id": entry.pk,
            "points_returned": current.points,
            "balance": locked.balance,
        }

    result, replayed = run_idempotent(
        merchant_id=redemption.merchant_id,
        key=idempotency_key,
        operation="cancel_redemption",
        request={"redemption_id": redemption.pk},
        work=work,
    )
    return CancellationResult(**result, replayed=replayed)


def mark_coupon_used(
    redemption: Redemption, *, occurred_at: dt.datetime | None = None, sale_external_id: str = ""
) -> Redemption:
    """Use a coupon at the counter, once. Only an issued coupon that has not expired can be used.

    `sale_external_id`: the POS's id of the sale the reward was given on, when the till knows it; a
    refund of that sale then returns the points spent (see refunds.return_spent_points).

    Locks the card, then the redemption (the order every service keeps), so a use racing a
    cancellation is judged after it: the coupon is either used or cancelled, never both. Using
    it moves no points (they were spent when it was issued), so there is no ledger entry and no
    idempotency key: a second use is refused, which is what a cashier must see.
    """
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        locked = lock_card(redemption.card_id)
        current = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if current.status == Redemption.Status.USED:
            raise CouponNotUsable("This coupon was already used.", fields={"status": [current.status]})
        if current.status != Redemption.Status.ISSUED:
            raise CouponNotUsable("This coupon was cancelled.", fields={"status": [current.status]})
        if current.expires_at <= occurred_at:
            raise CouponNotUsable(
                "This coupon has expired.", fields={"expires_at": [current.expires_at.isoformat()]}
            )
        current.status = Redemption.Status.USED
        current.used_at = occurred_at
        current.sale_external_id = sale_external_id
        current.save(update_fields=["status", "used_at", "sale_external_id"])
        emit_card_event(
            locked,
            "wallet.coupon.used",
            occurred_at=occurred_at,
            payload={"redemption_id": current.pk, "reward_id": current.reward_id, "points": current.points},
        )
    return current
