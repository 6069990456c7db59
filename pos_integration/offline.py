"""Purchases a till queued while it was offline, uploaded when the network is back.

Each queued purchase carries its own idempotency key and its original time, and the pass token the
till scanned then (checked offline against the merchant's published keys). Here every token is
verified again, at the sale's original time: the signature must hold and the token must have been
current then. A purchase whose token or time was altered fails that check and is reported back,
while the others earn. Uploading the same batch again (the till never saw the answer) replays.
"""
import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from core.errors import TesseraError
from merchants.models import StaffMember
from pos_integration.counter import identify
from pos_integration.counter_actions import earn
from pos_integration.models import CounterAction, PosDevice
from wallet.services import PurchaseRequest

MAX_BATCH = 500
MAX_OFFLINE_AGE = dt.timedelta(days=7)
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class QueuedPurchase:
    idempotency_key: str
    code: str
    external_id: str
    amount: int
    currency: str
    occurred_at: dt.datetime
    items: list


def upload_batch(device: PosDevice, cashier: StaffMember | None, purchases: list[QueuedPurchase],
                 *, now: dt.datetime | None = None) -> list[dict]:
    """Apply each queued purchase on its own (one bad line never blocks the rest); one outcome each."""
    now = now or timezone.now()
    return [_apply(device, cashier, queued, now) for queued in purchases]


def _apply(device, cashier, queued: QueuedPurchase, now: dt.datetime) -> dict:
    outcome = {"idempotency_key": queued.idempotency_key, "external_id": queued.external_id}
    if queued.occurred_at > now + CLOCK_SKEW or queued.occurred_at < now - MAX_OFFLINE_AGE:
        return {**outcome, "status": "rejected", "error": {
            "code": "occurred_at_out_of_range",
            "message": f"Offline sales are accepted up to {MAX_OFFLINE_AGE.days} days after they happened.",
        }}
    if queued.code.strip().isdigit():
        return {**outcome, "status": "rejected", "error": {
            "code": "token_required", "message": "An offline sale must carry the pass token scanned at the time.",
        }}
    try:
        identified = identify(device, queued.code, at=queued.occurred_at)
        result = earn(
            device, cashier, identified,
            PurchaseRequest(external_id=queued.external_id, amount=queued.amount, currency=queued.currency,
                            store_id=device.store_id, items=queued.items, occurred_at=queued.occurred_at),
            queued.idempotency_key, kind=CounterAction.Kind.OFFLINE_PURCHASE,
        )
    except TesseraError as error:
        return {**outcome, "status": "rejected", "error": {"code": error.code, "message": error.message,
                                                           "fields": error.fields}}
    return {**outcome, "status": "replayed" if result.replayed else "earned", **result.body}
