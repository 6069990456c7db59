"""Square's webhook JSON -> Tessera events. Pure functions: no HTTP, no database.

A payload we cannot read raises PermanentConnectorError: the same bytes would fail on every retry.
Square money is already integer minor units with an upper-case ISO 4217 currency (`amount_money`);
`amount_money` excludes the tip (`total_money` = amount + tip), and only the goods earn points.
"""
import datetime as dt
import json

from pos_integration.base import PermanentConnectorError
from pos_integration.types import CustomerHint, PurchaseCompleted, PurchaseRefunded

PAYMENT_EVENTS = frozenset({"payment.created", "payment.updated"})
REFUND_EVENTS = frozenset({"refund.created", "refund.updated"})
COMPLETED = "COMPLETED"

# 12 to 19 digits, optionally grouped by single spaces or dashes, not glued to other digits.


def read_notification(body: bytes) -> dict:
    """The v2 envelope: merchant_id, type, event_id, created_at, data{type, id, object}."""
    try:
        notification = json.loads(body)
    except ValueError as error:
        raise PermanentConnectorError(f"The Square notification is not JSON: {error}") from None
    if not isinstance(notification, dict):
        raise PermanentConnectorError("The Square notification is not a JSON object.")
    return notification


def event_object(notification: dict, object_type: str) -> dict:
    """`data.object.<object_type>` (the payment or refund itself), or an error for an odd payload."""
    data = notification.get("data")
    wrapper = data.get("object") if isinstance(data, dict) else None
    found = wrapper.get(object_type) if isinstance(wrapper, dict) else None
    if not isinstance(found, dict) or not isinstance(found.get("id"), str) or not found["id"]:
        raise PermanentConnectorError(f"The {notification.get('type')} notification carries no {object_type} object.")
    return found


def money(value, what: str) -> tuple[int, str]:
    """A Square Money object -> (minor units, currency)."""
    if not isinstance(value, dict):
        raise PermanentConnectorError(f"{what} has no amount.")
    amount, currency = value.get("amount"), value.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str) or not currency:
        raise PermanentConnectorError(f"{what} is not a Square Money object: {value!r}")
    return amount, currency.upper()


def timestamp(value, what: str) -> dt.datetime:
    """RFC 3339 (`2025-03-14T18:21:58.402Z`) -> an aware UTC datetime."""
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PermanentConnectorError(f"{what} is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise PermanentConnectorError(f"{what} has no UTC offset: {value!r}")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # "0001-01-01T00:00:00+01:00": before the first UTC day
        raise PermanentConnectorError(f"{what} is out of range: {value!r}") from None



def purchase_completed(payment: dict, customer: CustomerHint) -> PurchaseCompleted:
    amount, currency = money(payment.get("amount_money"), f"Payment {payment['id']} amount_money")
    return PurchaseCompleted(
        vendor_id=payment["id"],
        amount=amount,
        currency=currency,
        # created_at, not updated_at: payment.created and payment.updated must describe the same sale
        # identically, or the second would look like a different request under the same key.
        occurred_at=timestamp(payment.get("created_at"), f"Payment {payment['id']} created_at"),
        customer=customer,
        receipt_code=str(payment.get("receipt_number") or ""),
    )


def goods_share(refunded: int, payment: dict) -> int:
    """The part of a refund that comes off the goods (what earned points), pro rata to the payment's
    amount over its total: a full refund of a tipped payment (tip included) reverses exactly the
    goods, and partial refunds can never add up to more than the goods. Rounded down."""
    amount, total = (value.get("amount") if isinstance(value, dict) else None
                     for value in (payment.get("amount_money"), payment.get("total_money")))
    if not isinstance(amount, int) or not isinstance(total, int) or total <= 0 or total <= amount:
        return refunded
    return min(amount, refunded * amount // total)


def purchase_refunded(refund: dict, goods_amount: int) -> PurchaseRefunded:
    """`goods_amount` is the refund's goods_share: what the intake reverses points for."""
    _, currency = money(refund.get("amount_money"), f"Refund {refund['id']} amount_money")
    return PurchaseRefunded(
        refund_id=refund["id"],
        purchase_vendor_id=refund["payment_id"],
        amount=goods_amount,
        currency=currency,
        occurred_at=timestamp(refund.get("created_at"), f"Refund {refund['id']} created_at"),
    )
