"""The documented JSON a webhook consumer receives (README.md, "The body"); change it only with the docs.

One request carries a batch: `{"batch_id": ..., "events": [...]}`, events in outbox order. Each event
has the stable id `evt_<outbox id>`, the same on every resend, so a consumer keeps exactly-once state by
remembering event ids. The customer and card are read at send time, so they are the latest state
whatever order retries arrive in, and an erased customer's details are never sent from an old event.
"""
import datetime as dt
import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder

from crm_sync.types import CardSnapshot, CustomerProfile, OutboundEvent

EVENT_ID_PREFIX = "evt_"
BATCH_ID_PREFIX = "batch_"


def event_id(outbox_id: int) -> str:
    return f"{EVENT_ID_PREFIX}{outbox_id}"


def batch_id(events: list[OutboundEvent]) -> str:
    """Derived from the events it holds, so resending the same batch repeats its `webhook-id` (as
    the Standard Webhooks spec asks) and a batch of other events never reuses one."""
    digest = hashlib.sha256(",".join(str(e.event_id) for e in events).encode()).hexdigest()
    return f"{BATCH_ID_PREFIX}{digest[:32]}"


def batch_body(events: list[OutboundEvent]) -> bytes:
    """The exact bytes to sign and send."""
    document = {"batch_id": batch_id(events), "events": [event_json(e) for e in events]}
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")).encode()


def event_json(event: OutboundEvent) -> dict:
    return {
        "id": event_id(event.event_id),
        "type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": rfc3339(event.occurred_at),
        "merchant_id": event.merchant_id,
        "data": event.payload,
        "customer": customer_json(event.customer),
        "card": card_json(event.card),
    }


def customer_json(customer: CustomerProfile | None) -> dict | None:
    if customer is None:
        return None
    if customer.erased:
        return {"id": customer.customer_id, "erased": True}
    return {
        "id": customer.customer_id,
        "erased": False,
        "email": customer.email or None,
        "phone": customer.phone or None,
        "first_name": customer.first_name or None,
        "last_name": customer.last_name or None,
        "locale": customer.locale or None,
        "time_zone": customer.time_zone or None,
        "consents": dict(customer.consents),
    }


def card_json(card: CardSnapshot | None) -> dict | None:
    if card is None:
        return None
    return {
        "id": card.card_id,
        "number": card.number,
        "program": card.program,
        "balance": card.balance,
        "lifetime_points": card.lifetime_points,
        "tier": card.tier,
        "status": card.status,
    }


def rfc3339(moment: dt.datetime) -> str:
    """UTC with a `Z`, as most consumers' parsers expect."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
