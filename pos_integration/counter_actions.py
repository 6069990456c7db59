"""What a till does that moves points: earn, redeem, use a coupon, refund, adjust.

Each action calls the wallet service (which locks the card, writes the ledger entry and is
idempotent on the key) and, in the same transaction, records the device and cashier in a
CounterAction. A replayed request records nothing more. Keys are scoped per device, so two tills
that both count 1, 2, 3 never collide.
"""
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from core.errors import NotFound, TesseraError
from merchants.models import Reward, StaffMember
from pos_integration.counter import Identified
from pos_integration.models import CounterAction, PosDevice, SpentPassToken
from wallet.idempotency import run_idempotent, scoped_key
from wallet.models import Card, Purchase, Redemption
from wallet.services import (
    PurchaseRequest,
    adjust_points,
    mark_coupon_used,
    record_purchase,
    redeem_reward,
    refund_purchase,
)


class PresenceRequired(TesseraError):
    code = "customer_presence_required"
    http_status = 403
    default_message = (
        "Redeeming needs the pass's live QR code or a coupon, not the printed card number: "
        "ask the customer to open their pass."
    )


class TokenAlreadySpent(TesseraError):
    code = "token_already_spent"
    http_status = 409
    default_message = "This pass code was already used to redeem; ask the customer to refresh their pass."


@dataclass(frozen=True)
class CounterResult:
    """What every counter write answers: what happened, and the card's balance after it."""

    body: dict
    replayed: bool


def device_key(device: PosDevice, raw_key: str) -> str:
    return scoped_key(f"device-{device.pk}", raw_key)


def _record(device, cashier, kind, card_id, *, purchase_id=None, redemption_id=None, entry_id=None) -> None:
    CounterAction.objects.create(
        merchant_id=device.merchant_id, device=device, cashier=cashier, kind=kind, card_id=card_id,
        purchase_id=purchase_id, redemption_id=redemption_id, ledger_entry_id=entry_id,
    )


def _actor(cashier: StaffMember | None):
    return cashier.user if cashier else None


def earn(device: PosDevice, cashier: StaffMember | None, identified: Identified, request: PurchaseRequest,
         raw_key: str, *, kind: str = CounterAction.Kind.PURCHASE) -> CounterResult:
    with transaction.atomic():
        result = record_purchase(
            identified.card, request, idempotency_key=device_key(device, raw_key), source="pos",
            actor=_actor(cashier), store=device.store,
        )
        if not result.replayed:
            _record(device, cashier, kind, result.card_id, purchase_id=result.purchase_id, entry_id=result.entry_id)
    body = {"purchase_id": result.purchase_id, "points_earned": result.points_earned, "balance": result.balance}
    return CounterResult(body, result.replayed)


def redeem(device: PosDevice, cashier: StaffMember, identified: Identified, reward_id: int | None,
           raw_key: str, sale_external_id: str = "") -> CounterResult:
    """Redeem at the counter: a reward with a live pass token (spent once), or a coupon the customer
    got in the app (used once). A static card number proves nothing about who is at the till.
    `sale_external_id`: the sale the reward is given on; refunding that sale returns its points."""
    if identified.method == "coupon":
        return _use_coupon(device, cashier, identified, raw_key, sale_external_id)
    if identified.method != "token":
        raise PresenceRequired()
    reward = Reward.objects.filter(pk=reward_id, program_id=identified.card.program_id).first() if reward_id else None
    if reward is None:
        raise NotFound("No such reward in this card's program.", fields={"reward_id": ["Unknown."]})
    with transaction.atomic():
        result = redeem_reward(
            identified.card, reward, idempotency_key=device_key(device, raw_key), source="pos",
            actor=_actor(cashier), store_id=device.store_id, sale_external_id=sale_external_id,
        )
        if not result.replayed:
            _spend_token(result.card_id, identified)
            # Handed over now: the coupon the redemption issued is used at once.
            mark_coupon_used(Redemption.objects.get(pk=result.redemption_id), sale_external_id=sale_external_id)
            _record(device, cashier, CounterAction.Kind.REDEEM, result.card_id,
                    redemption_id=result.redemption_id, entry_id=result.entry_id)
    body = {
        "redemption_id": result.redemption_id, "reward": reward.name, "points": result.points,
        "balance": result.balance,
    }
    return CounterResult(body, result.replayed)


def _spend_token(card_id: int, identified: Identified) -> None:
    """Mark the token used; a second redemption with it (another key, a copied screenshot) fails
    here and rolls back with everything its request wrote."""
    try:
        with transaction.atomic():
            SpentPassToken.objects.create(card_id=card_id, key_id=identified.token_key_id, step=identified.token_step)
    except IntegrityError:
        raise TokenAlreadySpent() from None


def _use_coupon(device, cashier, identified: Identified, raw_key: str, sale_external_id: str) -> CounterResult:
    coupon = identified.coupon

    def work() -> dict:
        used = mark_coupon_used(coupon, sale_external_id=sale_external_id)
        _record(device, cashier, CounterAction.Kind.COUPON_USE, used.card_id, redemption_id=used.pk)
        balance = Card.objects.values_list("balance", flat=True).get(pk=used.card_id)
        return {"redemption_id": used.pk, "reward": coupon.reward.name, "points": used.points, "balance": balance}

    body, replayed = run_idempotent(
        merchant_id=device.merchant_id, key=device_key(device, raw_key), operation="use_coupon",
        request={"redemption_id": coupon.pk} | ({"sale_external_id": sale_external_id} if sale_external_id else {}),
        work=work,
    )
    return CounterResult(body, replayed)


def refund(device: PosDevice, cashier: StaffMember, external_id: str, amount: int | None,
           raw_key: str) -> CounterResult:
    """Refund a sale of this merchant by the POS's own id (all that remains, or `amount`)."""
    purchase = Purchase.objects.filter(merchant_id=device.merchant_id, external_id=external_id).first()
    if purchase is None:
        raise NotFound("No purchase with this id here.", fields={"external_id": ["Unknown."]})
    with transaction.atomic():
        result = refund_purchase(
            purchase, amount=amount, idempotency_key=device_key(device, raw_key), source="pos",
            actor=_actor(cashier),
        )
        if not result.replayed and result.card_id is not None:
            _record(device, cashier, CounterAction.Kind.REFUND, result.card_id, purchase_id=result.purchase_id,
                    entry_id=result.entry_id)
    body = {
        "purchase_id": result.purchase_id, "refunded_amount": result.refunded_amount,
        "points_reversed": result.points_reversed, "points_returned": result.points_returned,
        "balance": result.balance,
    }
    return CounterResult(body, result.replayed)


def adjust(device: PosDevice, cashier: StaffMember, identified: Identified, delta: int, reason: str,
           raw_key: str) -> CounterResult:
    with transaction.atomic():
        result = adjust_points(
            identified.card, delta=delta, reason=reason, actor=cashier.user,
            idempotency_key=device_key(device, raw_key), source="pos", store_id=device.store_id,
        )
        if not result.replayed:
            _record(device, cashier, CounterAction.Kind.ADJUST, result.card_id, entry_id=result.entry_id)
    return CounterResult({"entry_id": result.entry_id, "delta": result.delta, "balance": result.balance},
                         result.replayed)
