"""Appending to the outbox. Call inside the transaction of the change the event describes."""
import datetime as dt

from wallet.models import DomainEvent


def emit_event(
    event_type: str,
    *,
    merchant_id: int | None,
    payload: dict,
    occurred_at: dt.datetime,
    customer_id: int | None = None,
    card_id: int | None = None,
) -> DomainEvent:
    """Append one event. Payloads carry ids and amounts, never names, emails or phones: personal
    data stays in one place, so erasing a customer never means rewriting the outbox."""
    return DomainEvent.objects.create(
        event_type=event_type,
        merchant_id=merchant_id,
        customer_id=customer_id,
        card_id=card_id,
        payload=payload,
        occurred_at=occurred_at,
    )


def emit_card_event(card, event_type: str, *, occurred_at: dt.datetime, payload: dict) -> DomainEvent:
    """Append an event about one card: merchant, customer, card id and card number filled in."""
    return emit_event(
        event_type,
        merchant_id=card.merchant_id,
        customer_id=card.wallet.customer_id,
        card_id=card.pk,
        occurred_at=occurred_at,
        payload={"card_number": card.number, **payload},
    )
