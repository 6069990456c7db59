"""Tessera's generic POS webhook body, read into Tessera events.

One event per delivery, in the Standard Webhooks payload shape: {"type", "timestamp", "data"}.
The format is documented in README.md beside this module; every rule here is written there too.
"""
import json

from pos_integration.connectors.generic.fields import Fields, PayloadInvalid
from pos_integration.types import CustomerHint, CustomerIdentified, PosEvent, PurchaseCompleted, PurchaseRefunded
from wallet.services.earning import MAX_LINE_ITEMS

PURCHASE_COMPLETED, PURCHASE_REFUNDED, CUSTOMER_IDENTIFIED = (
    "purchase.completed", "purchase.refunded", "customer.identified",
)
EVENT_TYPES = (PURCHASE_COMPLETED, PURCHASE_REFUNDED, CUSTOMER_IDENTIFIED)

ID_LENGTH = 128  # a sale's external id in the wallet holds 128 characters
CUSTOMER_FIELDS = ("card_number", "email", "phone", "pos_customer_id")
ITEM_FIELDS = ("name", "sku", "quantity", "amount")


def parse_event(body: bytes) -> PosEvent:
    """The one event a verified body carries. Raises PayloadInvalid (a ConnectorError) naming the field."""
    envelope = Fields(_json(body), "body", ("type", "timestamp", "data"))
    kind = envelope.text("type", max_length=64)
    if kind not in EVENT_TYPES:
        raise PayloadInvalid(f"body.type {kind!r} is not one of {', '.join(EVENT_TYPES)}.")
    envelope.time("timestamp", required=False)  # when the sender made the event: checked, not used
    if not envelope.has("data"):
        raise PayloadInvalid("body.data is required.")
    read = {PURCHASE_COMPLETED: _purchase, PURCHASE_REFUNDED: _refund, CUSTOMER_IDENTIFIED: _customer}[kind]
    return read(envelope.value["data"])


def _json(body: bytes):
    def refuse_constant(name):
        raise PayloadInvalid(f"The body holds {name}, which is not JSON.")

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadInvalid(f"The body is not JSON: {error}.") from None


def _purchase(value) -> PurchaseCompleted:
    data = Fields(value, "data", ("id", "amount", "currency", "occurred_at", "customer", "receipt_code", "items"))
    return PurchaseCompleted(
        vendor_id=data.text("id", max_length=ID_LENGTH),
        amount=data.amount("amount"),
        currency=data.currency("currency"),
        occurred_at=data.time("occurred_at"),
        customer=_hint(data.object("customer", CUSTOMER_FIELDS)),
        receipt_code=data.text("receipt_code", max_length=64, required=False),
        items=[_item(line, f"data.items[{index}]") for index, line in
               enumerate(data.array("items", max_length=MAX_LINE_ITEMS))],
    )


def _hint(customer: Fields | None) -> CustomerHint:
    if customer is None:
        return CustomerHint()
    return CustomerHint(
        card_number=customer.text("card_number", max_length=32, required=False),
        vendor_customer_id=customer.text("pos_customer_id", max_length=255, required=False),
        email=customer.text("email", max_length=254, required=False),
        phone=customer.text("phone", max_length=32, required=False),
    )


def _item(value, path: str) -> dict:
    line = Fields(value, path, ITEM_FIELDS)
    item = {"name": line.text("name", max_length=200)}
    sku = line.text("sku", max_length=64, required=False)
    if sku:
        item["sku"] = sku
    if line.has("quantity"):
        item["quantity"] = line.number("quantity")
    if line.has("amount"):
        item["amount"] = line.amount("amount", minimum=0)
    return item


def _refund(value) -> PurchaseRefunded:
    data = Fields(value, "data", ("id", "purchase_id", "amount", "currency", "occurred_at"))
    return PurchaseRefunded(
        refund_id=data.text("id", max_length=ID_LENGTH),
        purchase_vendor_id=data.text("purchase_id", max_length=ID_LENGTH),
        amount=data.amount("amount", required=False),
        currency=data.currency("currency"),
        occurred_at=data.time("occurred_at"),
    )


def _customer(value) -> CustomerIdentified:
    data = Fields(value, "data", CUSTOMER_FIELDS)
    pos_customer_id = data.text("pos_customer_id", max_length=255)
    hint = _hint(data)
    if not (hint.card_number or hint.email or hint.phone):
        raise PayloadInvalid("data needs at least one of card_number, email or phone to identify the customer.")
    return CustomerIdentified(vendor_customer_id=pos_customer_id, customer=hint)
