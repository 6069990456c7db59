"""Stripe objects -> Tessera events: pure functions over the JSON Stripe sends, no I/O.

The connector fetches what a payload only names (the latest charge, the customer, a charge's refunds)
and passes it in. Money stays integer minor units; only the currency code changes case ("usd" ->
"USD"), except for the one currency where Stripe's minor unit is not ISO 4217's (see `iso_amount`).
"""
import datetime as dt

from pos_integration.types import CustomerHint, PurchaseCompleted, PurchaseRefunded

# The PaymentIntent (or Stripe Customer) metadata key where the POS puts the scanned loyalty card number.
CARD_METADATA_KEY = "tessera_card"

# ISO 4217 gives ISK no decimals; Stripe keeps it two-decimal for backwards compatibility ("an ISK
# amount of 100 represents 1 króna", support.stripe.com, deprecation of fractional ISK charges).
_STRIPE_CENTS_FOR_ISO_ZERO_DECIMAL = {"ISK"}


def iso_amount(amount, currency: str) -> int:
    """A Stripe amount in ISO 4217 minor units of `currency` (upper case). Whole krónur only for ISK:
    Stripe refuses fractional ISK since 2023; an older fractional one rounds down, never earning more."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValueError(f"Stripe amount is not an integer: {amount!r}")
    return amount // 100 if currency in _STRIPE_CENTS_FOR_ISO_ZERO_DECIMAL else amount


def currency_of(stripe_object: dict) -> str:
    currency = stripe_object.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ValueError(f"Stripe object {stripe_object.get('id')} has no currency.")
    return currency.upper()


def utc(timestamp) -> dt.datetime:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise ValueError(f"Stripe timestamp is not unix seconds: {timestamp!r}")
    try:
        return dt.datetime.fromtimestamp(timestamp, dt.UTC)
    except (OverflowError, OSError):  # past the year 9999 or the platform's time_t
        raise ValueError(f"Stripe timestamp is out of range: {timestamp!r}") from None


def object_id_of(stripe_object: dict) -> str:
    """The object's own id, which keys the events made from it."""
    found = stripe_object.get("id")
    if not isinstance(found, str) or not found:
        raise ValueError(f"Stripe {stripe_object.get('object') or 'object'} has no id.")
    return found


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def object_id(value) -> str:
    """Stripe expandable fields are an id or the expanded object; either way, the id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def is_collected(intent: dict) -> bool:
    """A PaymentIntent that succeeded and collected money (`amount_received`, not the requested `amount`)."""
    return intent.get("status") == "succeeded" and iso_amount(intent.get("amount_received"), currency_of(intent)) > 0


def purchase_from_payment_intent(intent: dict, *, charge: dict | None = None,
                                 customer: dict | None = None) -> PurchaseCompleted:
    """A collected PaymentIntent (see `is_collected`) as a sale, keyed by its id."""
    currency = currency_of(intent)
    amount = iso_amount(intent.get("amount_received"), currency)
    charge, customer = _mapping(charge), _mapping(customer)
    billing = _mapping(charge.get("billing_details"))
    hint = CustomerHint(
        card_number=card_number_in(intent) or card_number_in(customer),
        vendor_customer_id=object_id(intent.get("customer")),
        email=_text(intent.get("receipt_email")) or _text(customer.get("email")) or _text(billing.get("email")),
        phone=_text(customer.get("phone")) or _text(billing.get("phone")),
    )
    sale = object_id_of(intent)
    return PurchaseCompleted(
        vendor_id=sale, amount=amount, currency=currency, occurred_at=utc(intent.get("created")),
        customer=hint, receipt_code=_text(charge.get("receipt_number")) or sale,
    )


def card_number_in(stripe_object: dict) -> str:
    return str(_mapping(stripe_object.get("metadata")).get(CARD_METADATA_KEY) or "").strip()


def refund_from_refund(refund: dict, *, payment_intent: str = "") -> PurchaseRefunded | None:
    """A Refund object as a reversal, keyed by its id (re_...), once it has succeeded. Pending ones
    wait for their refund.updated; failed or canceled ones never gave money back. A refund of a
    charge made without a PaymentIntent matches no sale we recorded, so it is not reported."""
    sale = object_id(refund.get("payment_intent")) or payment_intent
    if refund.get("status") != "succeeded" or not sale:
        return None
    currency = currency_of(refund)
    return PurchaseRefunded(
        refund_id=object_id_of(refund), purchase_vendor_id=sale, amount=iso_amount(refund.get("amount"), currency),
        currency=currency, occurred_at=utc(refund.get("created")),
    )


def refunds_from_charge(charge: dict, refunds: list[dict]) -> list[PurchaseRefunded]:
    """One reversal per succeeded refund of the charge, oldest first, so partial refunds apply in order.
    Keyed by refund id, so the same refund seen through refund.created reverses once."""
    payment_intent = object_id(charge.get("payment_intent"))
    events = [refund_from_refund(refund, payment_intent=payment_intent) for refund in refunds
              if isinstance(refund, dict)]
    return sorted((e for e in events if e is not None), key=lambda e: (e.occurred_at, e.refund_id))


def embedded_refunds(charge: dict) -> list[dict] | None:
    """The charge's refunds when the payload carries all of them; None when they must be listed
    (not expanded since API version 2022-11-15, or a truncated list)."""
    listed = charge.get("refunds")
    if not isinstance(listed, dict) or listed.get("has_more") or not isinstance(listed.get("data"), list):
        return None
    if not listed["data"]:  # charge.refunded always has at least one refund: this list was not filled
        return None
    return listed["data"]
