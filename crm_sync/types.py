"""What crosses the boundary between Tessera and a CRM connector: plain dataclasses, no models.

Outbound, a connector receives `OutboundEvent`s: one outbox event each, with the customer's current
profile and card read at send time (the outbox itself holds ids and amounts only, so an erased
customer's personal data is never sent from an old event). Inbound, it returns `ConsentChange`s.
"""
import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CustomerProfile:
    """The customer as this merchant may see them. `erased`: the customer asked to be forgotten;
    send nothing personal (connectors delete or anonymise the CRM record where the CRM allows)."""

    customer_id: int
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    locale: str = ""
    time_zone: str = ""
    erased: bool = False
    consents: dict = field(default_factory=dict)  # channel -> opted in, for this merchant


@dataclass(frozen=True)
class CardSnapshot:
    card_id: int
    number: str
    program: str
    balance: int
    lifetime_points: int
    tier: str | None
    status: str


@dataclass(frozen=True)
class OutboundEvent:
    """One outbox event to send. `event_id` is stable across retries: connectors use it as the
    idempotency key or upsert key, so a resend after a crash never doubles anything in the CRM."""

    event_id: int
    event_type: str
    schema_version: int
    occurred_at: dt.datetime
    merchant_id: int
    payload: dict
    customer: CustomerProfile | None = None
    card: CardSnapshot | None = None


@dataclass(frozen=True)
class PushResult:
    """The outcome for one event of a batch. `ok`; else `error`, and whether trying again can help
    (`retryable`) and how long to wait at least (`retry_after`, seconds, from the CRM)."""

    event_id: int
    ok: bool
    error: str = ""
    retryable: bool = True
    retry_after: float | None = None

    @classmethod
    def delivered(cls, event_id: int) -> "PushResult":
        return cls(event_id=event_id, ok=True)


@dataclass(frozen=True)
class InboundRequest:
    """A CRM's webhook as received: raw body (verify over these bytes), lower-case headers, the
    method and the full URL the CRM called (from configuration; some signatures cover it)."""

    body: bytes
    headers: dict
    method: str
    url: str
    received_at: dt.datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class ConsentChange:
    """The CRM says this person opted in or out of a channel for this merchant. Found by email or
    phone among the merchant's customers (or by our customer id, if the CRM stored it)."""

    channel: str
    opted_in: bool
    email: str = ""
    phone: str = ""
    customer_id: int | None = None
