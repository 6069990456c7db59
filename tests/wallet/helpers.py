"""Short calls for tests: each goes through the real service."""
import uuid

from wallet.models import Card, DomainEvent, IdempotencyRecord, LedgerEntry, Purchase, Redemption
from wallet.services import PurchaseRequest, record_purchase


def buy(card, amount, external_id=None, *, key=None, currency="EUR", **request_fields):
    external_id = external_id or f"sale-{uuid.uuid4().hex[:12]}"
    return record_purchase(
        card,
        PurchaseRequest(external_id=external_id, amount=amount, currency=currency, **request_fields),
        idempotency_key=key or f"key-{external_id}",
    )


def ledger_sum(card) -> int:
    return sum(card.entries.values_list("delta", flat=True))


def written_rows() -> tuple:
    """Row counts of everything a money operation writes: equal before and after means nothing was written."""
    return tuple(
        model.objects.count() for model in (Card, LedgerEntry, Purchase, Redemption, DomainEvent, IdempotencyRecord)
    )
