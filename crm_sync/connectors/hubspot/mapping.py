"""What HubSpot receives for each outbox event.

Every event of a customer with an email refreshes their contact (batch upsert by email) with the
customer and card as they are at send time, so retried or reordered events still converge on the
current points and tier. Purchases, refunds and redemptions are also sent as custom behavioural
events (when the account's Hub ID is set; they need Enterprise) whose `uuid` is derived from the
outbox event id: HubSpot keeps the first occurrence of a uuid, so a resend never doubles. A customer
without an email, or erased, gets nothing sent: HubSpot contacts are keyed by email.
"""
import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from core.money import to_major_units
from crm_sync.types import OutboundEvent

# Our field -> HubSpot contact property. A connection's field_mapping overrides; "" leaves it out.
CONTACT_PROPERTIES = {
    "first_name": "firstname", "last_name": "lastname", "phone": "phone",
    "card_number": "tessera_card_number", "points": "tessera_points", "lifetime_points": "tessera_lifetime_points",
    "tier": "tessera_tier", "email_opt_in": "tessera_email_opt_in",
}
# Read from webhooks only: HubSpot's own "Unsubscribed from all email" property.
INBOUND_PROPERTIES = {"email_opt_out": "hs_email_optout"}
# Outbox event type -> (field_mapping key, default custom event name).
CUSTOM_EVENTS = {
    "wallet.purchase.recorded": ("purchase_event", "tessera_purchase"),
    "wallet.purchase.refunded": ("refund_event", "tessera_refund"),
    "wallet.reward.redeemed": ("redemption_event", "tessera_redemption"),
    "wallet.redemption.cancelled": ("redemption_cancelled_event", "tessera_redemption_cancelled"),
    "wallet.coupon.used": ("coupon_used_event", "tessera_coupon_used"),
}
# Payload keys copied into each custom event's properties (besides tessera_event_id and card_number).
EVENT_FIELDS = {
    "wallet.purchase.recorded": ("purchase_id", "external_id", "store_id", "amount", "currency", "points_earned"),
    "wallet.purchase.refunded": ("purchase_id", "external_id", "refund_amount", "points_reversed"),
    "wallet.reward.redeemed": ("redemption_id", "reward_id", "reward_name", "points"),
    "wallet.redemption.cancelled": ("redemption_id", "points_returned"),
    "wallet.coupon.used": ("redemption_id", "reward_id", "points"),
}
MONEY_FIELDS = ("amount",)  # minor units in the outbox, major units (with the currency) in HubSpot
OCCURRENCE_NAMESPACE = uuid.UUID("0b6f3c1e-7d2a-5e4f-9a8b-1c2d3e4f5a6b")
_QUALIFIED_NAME = re.compile(r"^pe\d+_")


@dataclass
class Plan:
    contacts: dict[str, dict] = field(default_factory=dict)  # email -> contact properties, latest wins
    occurrences: list[tuple[int, str, dict]] = field(default_factory=list)  # (event id, email, occurrence)
    email_of: dict[int, str] = field(default_factory=dict)  # event id -> contact; absent: nothing to send


def resolve(field_mapping: dict, defaults: dict) -> dict:
    """Property or event names for this connection: the mapping's value where given ("" drops it)."""
    return {key: str(field_mapping.get(key, default) or "") for key, default in defaults.items()}


def occurrence_uuid(merchant_id: int, event_id: int) -> str:
    """Stable across retries and workers: the same outbox event always gets the same uuid."""
    return str(uuid.uuid5(OCCURRENCE_NAMESPACE, f"tessera:{merchant_id}:{event_id}"))


def build_plan(events: list[OutboundEvent], *, properties: dict, event_names: dict, hub_id: str) -> Plan:
    plan = Plan()
    for event in events:
        email = contact_email(event)
        if not email:
            continue
        plan.email_of[event.event_id] = email
        plan.contacts.setdefault(email, {}).update(contact_properties(event, properties))
        occurrence = custom_event(event, email, event_names, hub_id)
        if occurrence:
            plan.occurrences.append((event.event_id, email, occurrence))
    return plan


def contact_email(event: OutboundEvent) -> str:
    customer = event.customer
    if customer is None or customer.erased:
        return ""
    return (customer.email or "").strip().lower()


def contact_properties(event: OutboundEvent, names: dict) -> dict:
    """String values (HubSpot's batch API takes strings). Empty names are left out, and so are empty
    personal fields, so a blank in Tessera never wipes what the merchant typed in HubSpot."""
    customer, card = event.customer, event.card
    values = {"first_name": customer.first_name, "last_name": customer.last_name, "phone": customer.phone,
              "email_opt_in": "true" if customer.consents.get("email") else "false"}
    values = {key: value for key, value in values.items() if value}
    if card is not None:
        values.update(card_number=card.number, points=str(card.balance), lifetime_points=str(card.lifetime_points),
                      tier=card.tier or "")
    return {names[key]: value for key, value in values.items() if names.get(key)}


def custom_event(event: OutboundEvent, email: str, event_names: dict, hub_id: str) -> dict | None:
    key_and_default = CUSTOM_EVENTS.get(event.event_type)
    name = event_names.get(key_and_default[0]) if key_and_default else ""
    if not name or not (hub_id or _QUALIFIED_NAME.match(name)):
        return None
    payload = event.payload
    properties = {"tessera_event_id": str(event.event_id), "card_number": str(payload.get("card_number") or "")}
    for key in EVENT_FIELDS[event.event_type]:
        value = payload.get(key)
        if key in MONEY_FIELDS and value is not None and payload.get("currency"):
            value = to_major_units(int(value), payload["currency"])
        if value is not None:
            properties[key] = str(value)
    return {
        "eventName": name if _QUALIFIED_NAME.match(name) else f"pe{hub_id}_{name}",
        "email": email,
        "occurredAt": event.occurred_at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "uuid": occurrence_uuid(event.merchant_id, event.event_id),
        "properties": properties,
    }
