"""Tessera outbox events -> Klaviyo JSON:API bodies. Pure functions: no HTTP, no database.

A profile upsert carries the card as it is now (points, tier, number), so the profile converges on
the latest state whatever order retries land in. Every other event becomes a Klaviyo event whose
`unique_id` is our outbox id: Klaviyo records only the first event with a given unique_id per profile
and metric, so a resend after a timeout never doubles a purchase.
"""
import datetime as dt

from core.money import to_major_units
from crm_sync.types import CardSnapshot, CustomerProfile, OutboundEvent

METRICS = {
    "wallet.card.enrolled": "Tessera Card Enrolled",
    "wallet.card.closed": "Tessera Card Closed",
    "wallet.card.reopened": "Tessera Card Reopened",
    "wallet.points.changed": "Tessera Points Changed",
    "wallet.points.expired": "Tessera Points Expired",
    "wallet.tier.changed": "Tessera Tier Changed",
    "wallet.purchase.recorded": "Tessera Purchase",
    "wallet.purchase.refunded": "Tessera Purchase Refunded",
    "wallet.reward.redeemed": "Tessera Reward Redeemed",
    "wallet.redemption.cancelled": "Tessera Redemption Cancelled",
    "wallet.coupon.used": "Tessera Coupon Used",
}
CONSENT_CHANGED = "wallet.consent.changed"
CUSTOMER_ERASED = "wallet.customer.erased"
PURCHASE_RECORDED = "wallet.purchase.recorded"

# Our consent channels that Klaviyo holds marketing consent for. Push consent needs device tokens that
# only Klaviyo's mobile SDK registers, and wallet-pass messages are Tessera's own: neither is sent.
CONSENT_CHANNELS = {"email": ("email", "email"), "sms": ("sms", "phone_number")}
CUSTOM_SOURCE = "Tessera loyalty wallet"

# Our field -> the Klaviyo profile property it is written to. A connection's field_mapping renames a
# field, or drops it when mapped to "".
PROFILE_FIELDS = {
    "points": "loyalty_points",
    "lifetime_points": "loyalty_lifetime_points",
    "tier": "loyalty_tier",
    "card_number": "loyalty_card_number",
    "program": "loyalty_program",
    "card_status": "loyalty_card_status",
    "customer_id": "tessera_customer_id",
}
EXTERNAL_ID_PREFIX = "tessera-"


class Unidentifiable(ValueError):
    """Nothing to find the person by in Klaviyo: no email, no phone, and no external id allowed."""


def external_id(customer_id: int) -> str:
    return f"{EXTERNAL_ID_PREFIX}{customer_id}"


def identity(customer: CustomerProfile, *, use_external_id: bool) -> dict:
    """One contact identifier (email, else phone), plus our external id when the merchant lets Tessera
    own it. One, because Klaviyo refuses (409 duplicate_profile) identifiers it holds on two profiles."""
    found = {}
    if customer.email:
        found["email"] = customer.email
    elif customer.phone:
        found["phone_number"] = customer.phone
    if use_external_id:
        found["external_id"] = external_id(customer.customer_id)
    if not found:
        raise Unidentifiable(f"Customer {customer.customer_id} has no email or phone number to find them by in "
                             "Klaviyo.")
    return found


def profile_properties(customer: CustomerProfile, card: CardSnapshot | None, field_mapping: dict) -> dict:
    values = {"customer_id": customer.customer_id}
    if card is not None:
        # tier None is sent as null on purpose: it clears a tier the card no longer has.
        values.update(points=card.balance, lifetime_points=card.lifetime_points, tier=card.tier,
                      card_number=card.number, program=card.program, card_status=card.status)
    names = {**PROFILE_FIELDS, **{k: v for k, v in field_mapping.items() if k in PROFILE_FIELDS}}
    return {names[field]: value for field, value in values.items() if names[field]}


def profile_body(customer: CustomerProfile, card: CardSnapshot | None, *, use_external_id: bool,
                 field_mapping: dict, with_phone: bool = True) -> dict:
    """`POST /api/profile-import`: create or update by the identifiers. Empty names are left out, never
    sent as null, so a name the merchant typed in Klaviyo is not wiped by one we don't have."""
    attributes = identity(customer, use_external_id=use_external_id)
    if with_phone and customer.phone:
        attributes["phone_number"] = customer.phone
    for name in ("first_name", "last_name", "locale"):
        if getattr(customer, name):
            attributes[name] = getattr(customer, name)
    if customer.time_zone:
        attributes["location"] = {"timezone": customer.time_zone}
    attributes["properties"] = profile_properties(customer, card, field_mapping)
    return {"data": {"type": "profile", "attributes": attributes}}


def klaviyo_time(moment: dt.datetime) -> str:
    """ISO 8601 in UTC, to the second (Klaviyo truncates to the second anyway)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def event_body(event: OutboundEvent, who: dict) -> dict:
    """`POST /api/events` for a metric event; `who` is `identity(...)` of its customer."""
    properties = {**event.payload, "tessera_event_id": event.event_id}
    if event.card is not None:
        properties["program"] = event.card.program
    attributes = {
        "properties": properties,
        "time": klaviyo_time(event.occurred_at),
        "unique_id": str(event.event_id),
        "metric": {"data": {"type": "metric", "attributes": {"name": METRICS[event.event_type]}}},
        "profile": {"data": {"type": "profile", "attributes": who}},
    }
    if event.event_type == PURCHASE_RECORDED:
        amount, currency = event.payload.get("amount"), event.payload.get("currency")
        if isinstance(amount, int) and isinstance(currency, str) and currency:
            # Klaviyo's value is money in major units (7.40 GBP); ours are integer minor units.
            attributes["value"] = float(to_major_units(amount, currency))
            attributes["value_currency"] = currency
    return {"data": {"type": "event", "attributes": attributes}}


def subscription_body(customer: CustomerProfile, channel: str, *, subscribed: bool, list_id: str) -> dict | None:
    """Subscribe to (or unsubscribe from) marketing on one channel through the merchant's list, or None
    when the channel is not Klaviyo's or the customer has no address on it."""
    if channel not in CONSENT_CHANNELS:
        return None
    klaviyo_channel, identifier = CONSENT_CHANNELS[channel]
    address = customer.email if identifier == "email" else customer.phone
    if not address:
        return None
    consent = "SUBSCRIBED" if subscribed else "UNSUBSCRIBED"
    profile = {"type": "profile", "attributes": {
        identifier: address, "subscriptions": {klaviyo_channel: {"marketing": {"consent": consent}}},
    }}
    attributes = {"profiles": {"data": [profile]}}
    if subscribed:
        attributes["custom_source"] = CUSTOM_SOURCE
    job = "profile-subscription-bulk-create-job" if subscribed else "profile-subscription-bulk-delete-job"
    return {"data": {"type": job, "attributes": attributes,
                     "relationships": {"list": {"data": {"type": "list", "id": list_id}}}}}


def deletion_body(profile_id: str) -> dict:
    """`POST /api/data-privacy-deletion-jobs` for one Klaviyo profile, named by Klaviyo's own id."""
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {
        "profile": {"data": {"type": "profile", "id": profile_id, "attributes": {}}},
    }}}
