"""What crosses the boundary between a POS connector and Tessera: plain dataclasses, no models.

A connector turns a vendor's webhook (or a poll) into these events; `pos_integration.intake`
applies them through the wallet services. Money is integer minor units with an upper-case ISO 4217
currency, whatever the vendor sends (Shopify sends "42.50", Stripe "usd": the connector converts).
"""
import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CustomerHint:
    """Whatever the sale tells us about who bought. Tried in order: card number, the POS's own
    customer id (linked earlier by a CustomerIdentified event), email, phone. All optional."""

    card_number: str = ""
    vendor_customer_id: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class PurchaseCompleted:
    """A sale that should earn points. `vendor_id` is the vendor's id of the sale (payment, order):
    the same sale reported twice (two webhooks, a webhook and a poll) earns once."""

    vendor_id: str
    amount: int
    currency: str
    occurred_at: dt.datetime
    customer: CustomerHint = field(default_factory=CustomerHint)
    receipt_code: str = ""
    items: list = field(default_factory=list)


@dataclass(frozen=True)
class PurchaseRefunded:
    """Money given back on an earlier sale. `refund_id` is the vendor's id of this refund (one refund
    reverses once); `purchase_vendor_id` the sale it refunds; `amount` None means all that remains."""

    refund_id: str
    purchase_vendor_id: str
    amount: int | None
    currency: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class CustomerIdentified:
    """The POS learned which of our cards its customer holds (the cashier scanned the pass into the
    POS's customer record, say). Later sales with this vendor customer id match that card."""

    vendor_customer_id: str
    customer: CustomerHint


PosEvent = PurchaseCompleted | PurchaseRefunded | CustomerIdentified


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as received: the raw body (verify over these exact bytes), the headers (keys in
    lower case), and the URL the vendor was told to call (from configuration, never from the
    request's Host header, which a proxy may change)."""

    body: bytes
    headers: dict
    url: str
    received_at: dt.datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class ParsedWebhook:
    """A verified webhook's events and the vendor's id for the delivery (to spot repeats)."""

    events: list
    vendor_event_id: str = ""


@dataclass(frozen=True)
class PollResult:
    """Events found by polling since `cursor`, and the cursor to start from next time."""

    events: list
    cursor: dict
