"""Turning Clover's notifications and REST objects into Tessera's POS events. Pure functions, no I/O.

A Clover notification is only a pointer (`P:<payment id>`), so every number here comes from the
payment, order and customer fetched from Clover's REST API, never from the webhook body.

The same payment may be mapped many times (a CREATE and an UPDATE notification, a poll, a replay).
The events must then be identical, because intake's idempotency keys compare the request: so they
only use fields that do not change once the payment is taken (ids, amounts, `createdTime`).
"""
import datetime as dt
import json
import re
from dataclasses import dataclass

from pos_integration.matching import card_number_in
from pos_integration.types import CustomerHint, CustomerIdentified, PurchaseCompleted, PurchaseRefunded

PAYMENT = "P"
# Clover's type key for refunds is unverified (a third-party note says `R:<refund id>`); a refund
# may instead arrive as an UPDATE of its payment, which `P` handles.
REFUND = "R"
EARNING_RESULTS = {"SUCCESS"}
# A voided payment (unverified: Clover may report a void only through this result) loses what it earned.
VOIDED_RESULTS = {"VOIDED"}
OBJECT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
# A card number's digits, possibly grouped by spaces or dashes as printed on the pass.


@dataclass(frozen=True)
class Update:
    """One entry of a notification's `merchants[merchantId]` list."""

    merchant_id: str
    type_key: str
    object_id: str
    action: str
    ts: int


def load_json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def is_verification(payload) -> bool:
    """Clover's URL check: `{"verificationCode": "<uuid>"}` and nothing else."""
    return (
        isinstance(payload, dict) and set(payload) == {"verificationCode"}
        and isinstance(payload["verificationCode"], str) and 0 < len(payload["verificationCode"]) <= 200
    )


def notification_updates(payload) -> list[Update]:
    """Every update of every merchant in a notification, in the order sent. Malformed entries are skipped."""
    merchants = payload.get("merchants") if isinstance(payload, dict) else None
    if not isinstance(merchants, dict):
        return []
    updates = []
    for merchant_id, entries in merchants.items():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            type_key, _, object_id = str(entry.get("objectId") or "").partition(":")
            if not object_id:
                continue
            ts = entry.get("ts")
            updates.append(Update(str(merchant_id), type_key, object_id, str(entry.get("type") or ""),
                                  ts if isinstance(ts, int) else 0))
    return updates


def delivery_id(updates: list[Update]) -> str:
    """Clover sends no event id; (merchant, objectId, type, ts) of every update identifies a delivery."""
    parts = sorted(f"{u.merchant_id}:{u.type_key}:{u.object_id}:{u.action}:{u.ts}" for u in updates)
    return ",".join(parts)


def is_safe_object_id(object_id: str) -> bool:
    """Ids go into REST paths: only plain alphanumerics, so a crafted id cannot reach another endpoint."""
    return bool(OBJECT_ID.match(object_id or ""))


def from_millis(value) -> dt.datetime | None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):  # past the year 9999: not a time Clover sends
        return None


def _cents(value) -> int | None:
    """An integer amount in cents as Clover's REST objects hold it, or None for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def elements(collection) -> list:
    """Clover wraps expanded collections as {"elements": [...]}; tolerate a bare list or nothing."""
    if isinstance(collection, dict):
        collection = collection.get("elements")
    return [item for item in collection or [] if isinstance(item, dict)] if isinstance(collection, list) else []


def reference_id(value) -> str:
    return str(value.get("id") or "") if isinstance(value, dict) else ""


def refund_payment_id(refund: dict) -> str:
    """The payment a refund belongs to: `payment: {id}` in the REST object, `paymentId` in some responses."""
    return reference_id(refund.get("payment")) or str(refund.get("paymentId") or "")



def first_customer_id(order: dict) -> str:
    customers = elements(order.get("customers"))
    return reference_id(customers[0]) if customers else ""


def customer_hint(payment: dict, order: dict, customer: dict | None) -> CustomerHint:
    emails = elements((customer or {}).get("emailAddresses"))
    phones = elements((customer or {}).get("phoneNumbers"))
    return CustomerHint(
        card_number=card_number_in(order.get("note"), payment.get("note")),
        vendor_customer_id=first_customer_id(order),
        email=str(emails[0].get("emailAddress") or "") if emails else "",
        phone=str(phones[0].get("phoneNumber") or "") if phones else "",
    )


def line_items(payment: dict, order: dict) -> list[dict]:
    """The order's lines, only on a payment that pays the whole order: with split tenders, giving every
    payment the whole order's lines would count each line once per payment."""
    paid, total = _cents(payment.get("amount")), _cents(order.get("total"))
    if paid is None or (total is not None and paid < total) or (total is None and order.get("total")):
        return []
    items = []
    for line in elements(order.get("lineItems")):
        unit_qty = line.get("unitQty")
        items.append({
            "name": str(line.get("name") or ""),
            "unit_price": _cents(line.get("price")) or 0,
            # unitQty is in thousandths (1000 = one unit): unverified, third-party fixtures only.
            "quantity": unit_qty / 1000 if isinstance(unit_qty, int) and unit_qty > 0 else 1,
            "sku": reference_id(line.get("item")),
        })
    return items


class UnusablePayment(ValueError):
    """A payment that should earn but lacks what earning needs (an order's currency, say)."""


def payment_events(payment: dict, order: dict, customer: dict | None) -> list:
    """What one Clover payment means for the loyalty program: earn on success, reverse its refunds.

    Earns on `amount` (in cents, tax included, tip excluded: a tip is for the staff, not a purchase);
    a payment that is not SUCCESS (declined, pending, an uncaptured AUTH) earns nothing yet, and its
    later update (or the reconciliation poll) brings it once it succeeds.
    """
    result = str(payment.get("result") or "")
    if result not in EARNING_RESULTS | VOIDED_RESULTS:
        return []
    payment_id, amount = str(payment.get("id") or ""), payment.get("amount")
    if not is_safe_object_id(payment_id):
        raise UnusablePayment(f"Clover payment id {payment_id!r} is not usable.")
    if not isinstance(amount, int) or amount <= 0:
        return []  # a zero payment (a fully discounted order) earns nothing and cannot be refunded
    currency = str(order.get("currency") or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise UnusablePayment(f"Clover order {reference_id(order) or '?'} of payment {payment_id} has no currency.")
    occurred_at = from_millis(payment.get("createdTime"))
    if occurred_at is None:
        raise UnusablePayment(f"Clover payment {payment_id} has no createdTime.")
    hint = customer_hint(payment, order, customer)
    events = []
    if hint.card_number and hint.vendor_customer_id:
        events.append(CustomerIdentified(hint.vendor_customer_id, CustomerHint(card_number=hint.card_number)))
    events.append(PurchaseCompleted(
        vendor_id=payment_id, amount=amount, currency=currency, occurred_at=occurred_at, customer=hint,
        receipt_code=reference_id(order) or payment_id, items=line_items(payment, order),
    ))
    refunds, refunded = refund_events(payment, currency, occurred_at)
    events += refunds
    if result in VOIDED_RESULTS and refunded < amount:
        voided_at = from_millis(payment.get("modifiedTime")) or occurred_at
        events.append(PurchaseRefunded(f"void:{payment_id}", payment_id, None, currency, voided_at))
    return events


def refund_events(payment: dict, currency: str, paid_at: dt.datetime) -> tuple[list, int]:
    """The payment's refunds, oldest first, and the total they give back.

    Each is capped at what is left of the payment, so a refund that also returns the tip (Clover's
    refund `amount` may include it: unverified) never reverses more than the payment earned. The one
    that completes the payment is sent as "all that remains" (amount None).
    """
    paid = int(payment["amount"])
    refunds = sorted(elements(payment.get("refunds")),
                     key=lambda r: (_cents(r.get("createdTime")) or 0, str(r.get("id"))))
    events, total = [], 0
    for refund in refunds:
        refund_id, amount = str(refund.get("id") or ""), refund.get("amount")
        if not refund_id or not isinstance(amount, int) or amount <= 0 or total >= paid:
            continue
        total = min(paid, total + amount)
        events.append(PurchaseRefunded(
            refund_id=refund_id, purchase_vendor_id=str(payment["id"]),
            amount=None if total >= paid else amount, currency=currency,
            occurred_at=from_millis(refund.get("createdTime")) or paid_at,
        ))
    return events, total
