"""Shopify order and refund payloads (full REST resources) turned into Tessera events.

Money: Shopify sends decimal strings in the shop's currency ("42.50", "1500"). They become integer
minor units exactly, with Decimal and the currency's ISO 4217 exponent; an amount finer than the
currency allows is refused, never rounded, because a rounded amount would earn the wrong points.

What earns: the order's `total_price`, what the customer paid and what the receipt shows. Shopify
refunds are money movements (their transactions give back tax, shipping and tips too), so earning on
the same total makes a partial refund reverse exactly its share and a full refund everything, and a
customer claiming an unmatched sale types the total printed on the receipt.

A payload we cannot read raises PermanentConnectorError: the same bytes would fail on every retry.
"""
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation

from core.money import minor_unit_exponent
from pos_integration.base import PermanentConnectorError
from pos_integration.matching import card_number_in
from pos_integration.types import CustomerHint, CustomerIdentified, PurchaseCompleted, PurchaseRefunded
from wallet import rules

# The note attribute a POS cashier (or a POS UI extension) fills with the customer's Tessera card.
CARD_ATTRIBUTE = "tessera_card"
MAX_LINE_ITEMS = 500
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def load(body: bytes) -> dict:
    """The JSON body, with every number read exactly (ids beyond 2^53, decimals as Decimal)."""
    try:
        payload = json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as error:
        raise PermanentConnectorError(f"The Shopify body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PermanentConnectorError("The Shopify body is not a JSON object.")
    return payload


def to_minor_units(value, currency: str) -> int:
    """"42.50" EUR -> 4250, "1500" JPY -> 1500. Refuses floats' cousins: "42.505" EUR, "1500.5" JPY."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise PermanentConnectorError(f"Amount {value!r} is not a decimal string.")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PermanentConnectorError(f"Amount {value!r} is not a decimal number.") from None
    if not amount.is_finite():
        raise PermanentConnectorError(f"Amount {value!r} is not a number.")
    minor = amount.scaleb(minor_unit_exponent(currency))
    if minor != minor.to_integral_value():
        raise PermanentConnectorError(f"Amount {value} has more decimals than {currency} allows.")
    return int(minor)


def currency_of(value) -> str:
    currency = str(value or "").strip().upper()
    if not _CURRENCY.match(currency):
        raise PermanentConnectorError(f"Currency {value!r} is not an ISO 4217 code.")
    return currency


def timestamp(payload: dict, fallback: dt.datetime) -> dt.datetime:
    """When it happened at the till: `processed_at`, else `created_at`. Both are in every delivery of
    one order, so orders/create and orders/paid describe the sale identically."""
    for name in ("processed_at", "created_at"):
        value = payload.get(name)
        if value:
            try:
                moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise PermanentConnectorError(f"{name} {value!r} is not an ISO 8601 time.") from None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            try:
                moment.astimezone(dt.UTC)  # stored in UTC: "0001-01-01T00:00:00+01:00" has no UTC day
            except OverflowError:
                raise PermanentConnectorError(f"{name} {value!r} is out of range.") from None
            return moment
    return fallback


def order_earns(order: dict, *, pos_only: bool) -> bool:
    """Paid, real (not a test order), not cancelled, and rung up at a Shopify POS when `pos_only`."""
    if order.get("financial_status") != "paid" or order.get("test") or order.get("cancelled_at"):
        return False
    return not pos_only or order.get("source_name") == "pos"


def purchase_events(order: dict, *, pos_only: bool, received_at: dt.datetime) -> list:
    """orders/create or orders/paid: a sale that earns (keyed by the order id, so both earn once),
    preceded by a CustomerIdentified when the sale ties a Shopify customer to a Tessera card."""
    if not order_earns(order, pos_only=pos_only):
        return []
    if order.get("id") in (None, ""):
        raise PermanentConnectorError("The order has no id.")
    currency = currency_of(order.get("currency"))
    amount = to_minor_units(order.get("total_price"), currency)
    if amount <= 0:
        return []  # a free order (fully discounted) has nothing to earn on
    hint = customer_hint(order)
    events = []
    if hint.card_number and hint.vendor_customer_id:
        events.append(CustomerIdentified(hint.vendor_customer_id, CustomerHint(card_number=hint.card_number)))
    events.append(PurchaseCompleted(
        vendor_id=str(order["id"]), amount=amount, currency=currency, occurred_at=timestamp(order, received_at),
        customer=hint, receipt_code=receipt_code(order), items=line_items(order, currency),
    ))
    return events


def refund_events(refund: dict, *, received_at: dt.datetime) -> list:
    """refunds/create: the money given back is the sum of its successful refund transactions. A
    refund that moved no money (a restock only) reverses nothing, since Shopify sends it anyway."""
    transactions = refund.get("transactions") or []
    if not isinstance(transactions, list):
        raise PermanentConnectorError("The refund's transactions are not a list.")
    given_back = [
        transaction for transaction in transactions
        if isinstance(transaction, dict) and transaction.get("kind") == "refund"
        and transaction.get("status") == "success"
        and not transaction.get("test")
    ]
    if not given_back:
        return []
    if refund.get("id") in (None, "") or refund.get("order_id") in (None, ""):
        raise PermanentConnectorError("The refund has no id or no order_id.")
    currencies = {currency_of(transaction.get("currency")) for transaction in given_back}
    if len(currencies) != 1:
        raise PermanentConnectorError(f"Refund {refund['id']} mixes currencies: {sorted(currencies)}.")
    currency = currencies.pop()
    amount = sum(to_minor_units(transaction.get("amount"), currency) for transaction in given_back)
    if amount <= 0:
        return []
    return [PurchaseRefunded(
        refund_id=str(refund["id"]), purchase_vendor_id=str(refund["order_id"]), amount=amount, currency=currency,
        occurred_at=timestamp(refund, received_at),
    )]


def customer_hint(order: dict) -> CustomerHint:
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    return CustomerHint(
        card_number=card_number(order),
        vendor_customer_id=str(customer["id"]) if customer.get("id") not in (None, "") else "",
        email=str(customer.get("email") or order.get("email") or order.get("contact_email") or ""),
        phone=str(customer.get("phone") or order.get("phone") or ""),
    )


def card_number(order: dict) -> str:
    """A Tessera card number from the `tessera_card` note attribute, else one typed in the note."""
    attributes = order.get("note_attributes")
    for attribute in attributes if isinstance(attributes, list) else []:
        if not isinstance(attribute, dict):
            continue
        name = re.sub(r"[\s-]+", "_", str(attribute.get("name") or "").strip().lower())
        if name == CARD_ATTRIBUTE:
            digits = re.sub(r"[\s-]", "", str(attribute.get("value") or ""))
            if rules.is_valid_card_number(digits):
                return digits
    return card_number_in(order.get("note"))


def receipt_code(order: dict) -> str:
    """The order name printed on the POS receipt ("#1042", or the shop's own prefix and suffix)."""
    name = str(order.get("name") or "").strip()
    if name:
        return name
    number = order.get("order_number")
    return f"#{number}" if number not in (None, "") else ""


def line_items(order: dict, currency: str) -> list:
    """What was bought, for the merchant's reports: only fields that do not change between deliveries."""
    lines = order.get("line_items") or []
    if not isinstance(lines, list):
        raise PermanentConnectorError("The order's line_items are not a list.")
    items = []
    for line in lines[:MAX_LINE_ITEMS]:
        if not isinstance(line, dict):
            raise PermanentConnectorError(f"A line item is not an object: {line!r:.40}.")
        items.append({
            "sku": str(line.get("sku") or ""),
            "title": str(line.get("title") or line.get("name") or ""),
            "quantity": quantity(line.get("quantity")),
            "unit_price": to_minor_units(line.get("price") or "0", currency),
        })
    return items


def quantity(value) -> int:
    """A line's quantity: Shopify sends a whole number; anything else is not a Shopify line."""
    if value in (None, ""):
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise PermanentConnectorError(f"Quantity {value!r:.40} is not a whole number.")
    try:
        whole = Decimal(str(value).strip())
    except InvalidOperation:
        raise PermanentConnectorError(f"Quantity {value!r:.40} is not a whole number.") from None
    if not whole.is_finite() or whole != whole.to_integral_value() or abs(whole) > 10**9:
        raise PermanentConnectorError(f"Quantity {value!r:.40} is not a whole number.")
    return int(whole)
