"""Appending to the outbox. Call inside the transaction of the change the event describes."""
import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from wallet.models import DomainEvent

logger = logging.getLogger(__name__)


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
    connection = transaction.get_connection()
    if settings.TESSERA_OUTBOX_LISTENERS and connection.in_atomic_block:
        tell = _TellListeners(merchant_id)
        # One call per merchant and block: a purchase writes several events, and each call may publish
        # a broker message inside the till's request. A call registered under the same savepoints
        # runs exactly when this event commits (Django drops it if one of them rolls back).
        savepoints = set(connection.savepoint_ids)
        if not any(callback == tell and sids == savepoints for sids, callback, _ in connection.run_on_commit):
            transaction.on_commit(tell, robust=True)
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


@dataclass(frozen=True)
class _TellListeners:
    """After commit: tell the integrations (TESSERA_OUTBOX_LISTENERS) that this merchant has new
    events. A failing listener is logged; the events are safe in the outbox and swept later."""

    merchant_id: int | None

    def __call__(self) -> None:
        for path in getattr(settings, "TESSERA_OUTBOX_LISTENERS", []):
            try:
                import_string(path)(self.merchant_id)
            except Exception:
                logger.exception("Outbox listener %s failed", path)
