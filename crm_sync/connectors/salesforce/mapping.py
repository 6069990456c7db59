"""What Salesforce receives for each outbox event: Contact upserts and loyalty event records.

Every event with a customer upserts their Contact by our customer id with the card as it is at send
time (points, tier), so the Contact converges on the latest state even when retries reorder events.
Events that are moments worth a timeline row (a purchase, a refund, a redemption...) also upsert one
record of the loyalty event object keyed by the outbox event id, so a resend never makes a second
row; it finds its Contact through the external id (`Contact__r`). An erased customer's Contact is
anonymised and nothing else is sent about them.

Field names come from DEFAULT_FIELDS, overridden per connection by `field_mapping` (our name -> the
Salesforce API name); an empty name leaves an optional field out.
"""
import datetime as dt
import json
import re
from dataclasses import dataclass, field

from core.money import to_major_units
from core.plugins import ConfigInvalid
from crm_sync.types import OutboundEvent

DEFAULT_FIELDS = {
    "contact_object": "Contact",
    "customer_id": "Tessera_Customer_Id__c",  # External ID, unique, on the Contact
    "first_name": "FirstName",
    "last_name": "LastName",
    "email": "Email",
    "phone": "Phone",
    "email_opt_out": "HasOptedOutOfEmail",
    "sms_opt_in": "",
    "push_opt_in": "",
    "points": "Loyalty_Points__c",
    "lifetime_points": "Loyalty_Lifetime_Points__c",
    "tier": "Loyalty_Tier__c",
    "card_number": "Loyalty_Card_Number__c",
    "program": "Loyalty_Program__c",
    "card_status": "Loyalty_Card_Status__c",
    "event_object": "Tessera_Loyalty_Event__c",  # empty: send Contacts only
    "event_id": "Tessera_Event_Id__c",  # External ID, unique, on the event object
    "event_contact": "Contact__r",  # the lookup to Contact, by relationship name
    "event_type": "Event_Type__c",
    "occurred_at": "Occurred_At__c",
    "event_points": "Points__c",
    "event_amount": "Amount__c",
    "event_currency": "Currency__c",
    "event_card_number": "Card_Number__c",
    "event_details": "Details__c",
}
REQUIRED_FIELDS = ("contact_object", "customer_id")
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
ERASED_LAST_NAME = "Erased customer"
UNNAMED_LAST_NAME = "Tessera customer {customer_id}"  # LastName is required to create a Contact
DETAILS_LIMIT = 32768  # a Long Text Area's largest size

# Event type -> how many points it moved, read from its payload. These get a loyalty event record.
_POINTS = {
    "wallet.card.enrolled": lambda p: None,
    "wallet.purchase.recorded": lambda p: p.get("points_earned"),
    "wallet.purchase.refunded": lambda p: -int(p.get("points_reversed") or 0),
    "wallet.reward.redeemed": lambda p: -int(p.get("points") or 0),
    "wallet.redemption.cancelled": lambda p: p.get("points_returned"),
    "wallet.coupon.used": lambda p: None,  # the points left at redemption
    "wallet.points.expired": lambda p: -int(p.get("points_expired") or 0),
    "wallet.tier.changed": lambda p: None,
}
# Points changes that no other event describes; earning, redeeming, refunds, expiry have their own.
_OWN_POINTS_KINDS = ("welcome", "adjust")


class FieldMap(dict):
    """Our field name -> Salesforce API name, for one connection."""

    @classmethod
    def from_overrides(cls, overrides: dict) -> "FieldMap":
        errors = {}
        for name, value in (overrides or {}).items():
            if name not in DEFAULT_FIELDS:
                errors[name] = f"Unknown field; known: {', '.join(sorted(DEFAULT_FIELDS))}."
            elif not isinstance(value, str) or (value and not _API_NAME.match(value)):
                errors[name] = "A Salesforce API name (letters, digits, underscores), or empty to leave it out."
            elif not value and name in REQUIRED_FIELDS:
                errors[name] = "Required."
        fields = cls({**DEFAULT_FIELDS, **(overrides or {})})
        if fields["event_object"] and not fields["event_id"]:
            errors["event_id"] = "Required while event_object is set."
        if errors:
            raise ConfigInvalid(errors)
        return fields

    def put(self, record: dict, name: str, value) -> None:
        if self[name]:
            record[self[name]] = value


@dataclass
class Plan:
    """The records one batch sends, and which of them each event needs."""

    contacts: dict[str, dict] = field(default_factory=dict)  # customer external id -> Contact record
    events: dict[str, dict] = field(default_factory=dict)  # event external id -> event record
    needs: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)  # event_id -> (contact, record)


def plan(events: list[OutboundEvent], fields: FieldMap) -> Plan:
    result = Plan()
    for event in events:
        if event.customer is None:
            result.needs[event.event_id] = (None, None)
            continue
        contact_key = str(event.customer.customer_id)
        # One record per Contact: the same external id twice in one call fails both records.
        result.contacts[contact_key] = contact_record(event, fields)
        record_key = None
        if fields["event_object"] and not event.customer.erased and _has_event_record(event):
            record_key = str(event.event_id)
            result.events[record_key] = event_record(event, fields)
        result.needs[event.event_id] = (contact_key, record_key)
    return result


def _has_event_record(event: OutboundEvent) -> bool:
    if event.event_type == "wallet.points.changed":
        return event.payload.get("kind") in _OWN_POINTS_KINDS
    return event.event_type in _POINTS


def contact_record(event: OutboundEvent, fields: FieldMap) -> dict:
    customer = event.customer
    record = {fields["customer_id"]: str(customer.customer_id)}
    if customer.erased:
        for name in ("first_name", "email", "phone"):
            fields.put(record, name, None)  # null clears the field in Salesforce
        fields.put(record, "last_name", ERASED_LAST_NAME)
        fields.put(record, "email_opt_out", True)
        fields.put(record, "sms_opt_in", False)
        fields.put(record, "push_opt_in", False)
        return record
    # Empty values are left out rather than sent: they would wipe what staff typed in Salesforce.
    for name in ("first_name", "email", "phone"):
        if getattr(customer, name):
            fields.put(record, name, getattr(customer, name))
    fields.put(record, "last_name", customer.last_name or UNNAMED_LAST_NAME.format(customer_id=customer.customer_id))
    if "email" in customer.consents:
        fields.put(record, "email_opt_out", not customer.consents["email"])
    for channel in ("sms", "push"):
        if channel in customer.consents:
            fields.put(record, f"{channel}_opt_in", bool(customer.consents[channel]))
    card = event.card
    if card is not None:
        fields.put(record, "points", card.balance)
        fields.put(record, "lifetime_points", card.lifetime_points)
        fields.put(record, "tier", card.tier)
        fields.put(record, "card_number", card.number)
        fields.put(record, "program", card.program)
        fields.put(record, "card_status", card.status)
    return record


def event_record(event: OutboundEvent, fields: FieldMap) -> dict:
    payload = event.payload
    record = {fields["event_id"]: str(event.event_id)}
    if fields["event_contact"]:
        record[fields["event_contact"]] = {fields["customer_id"]: str(event.customer.customer_id)}
    fields.put(record, "event_type", event.event_type)
    fields.put(record, "occurred_at", _timestamp(event.occurred_at))
    points = payload.get("delta") if event.event_type == "wallet.points.changed" else _POINTS[event.event_type](payload)
    if points is not None:
        fields.put(record, "event_points", int(points))
    amount = _amount(event)
    if amount is not None:
        fields.put(record, "event_amount", amount)
        fields.put(record, "event_currency", payload.get("currency") or "")
    card_number = payload.get("card_number") or (event.card.number if event.card else "")
    if card_number:
        fields.put(record, "event_card_number", card_number)
    fields.put(record, "event_details", json.dumps(payload, sort_keys=True, default=str)[:DETAILS_LIMIT])
    return record


def _amount(event: OutboundEvent) -> float | None:
    """Money in major units (Salesforce currency fields are decimal); refunds are negative."""
    payload = event.payload
    currency = payload.get("currency") or ""
    if event.event_type == "wallet.purchase.recorded" and currency:
        return float(to_major_units(int(payload.get("amount") or 0), currency))
    if event.event_type == "wallet.purchase.refunded" and currency:
        return -float(to_major_units(int(payload.get("refund_amount") or 0), currency))
    return None


def _timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as Salesforce writes dateTime values."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
