"""Applying what a POS connector reports (a webhook's or a poll's events) through the wallet services.

Every write is keyed by (connection, vendor id): the sale's id for an earn, the refund's id for a
reversal. So a webhook delivered twice, a webhook plus a poll, or a replay from the admin all land
once. A sale also dedupes on its external id across channels: the same sale scanned at a Tessera
till and reported by the POS's webhook earns once.

Text that PostgreSQL cannot store (a NUL character) is refused here, for every connector, before
any event is applied: bad input, failed for good, not a database error retried as a connector bug.
"""
import dataclasses

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from pos_integration.base import ConnectorError, PermanentConnectorError, SaleNotSeen
from pos_integration.models import PosConnection, PosCustomerLink
from pos_integration.types import (
    CustomerHint,
    CustomerIdentified,
    ParsedWebhook,
    PurchaseCompleted,
    PurchaseRefunded,
)
from wallet import rules
from wallet.idempotency import scoped_key
from wallet.models import Card, Purchase
from wallet.services import (
    PurchaseRequest,
    attach_purchase,
    record_purchase,
    record_unmatched_purchase,
    refund_purchase,
)
from wallet.services.accounts import normalize_email, normalize_phone


def connection_key(connection: PosConnection, kind: str, vendor_id: str) -> str:
    return scoped_key(f"pos-{connection.pk}", f"{kind}:{vendor_id}")


def require_storable_text(parsed: ParsedWebhook | list) -> None:
    """Refuse a parsed webhook (or a list of events) holding a NUL character in any text.

    PostgreSQL's text and jsonb cannot store one, so the same bytes would fail at the database on
    every retry, logged as a connector bug. Checked for all events before any is applied, so a
    delivery with one bad event writes nothing at all."""
    if isinstance(parsed, ParsedWebhook):
        if "\x00" in parsed.vendor_event_id:
            raise PermanentConnectorError("Bad input: the vendor's event id holds a NUL character (\\u0000).")
        parsed = parsed.events
    for event in parsed:
        where = _nul_path(dataclasses.asdict(event)) if dataclasses.is_dataclass(event) else None
        if where is not None:
            raise PermanentConnectorError(
                f"Bad input: {type(event).__name__} field {where} holds a NUL character (\\u0000)."
            )


def _nul_path(value, path: str = "") -> str | None:
    """Where in `value` a NUL character sits ("customer.email", "items[0].name"), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            if "\x00" in str(key):
                return f"{path}.{key!r}".lstrip(".")
            found = _nul_path(inner, f"{path}.{key}".lstrip("."))
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            found = _nul_path(inner, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def apply_events(connection: PosConnection, events: list) -> list[dict]:
    """Apply each event; return one outcome per event (kept on the delivery for the admin)."""
    require_storable_text(events)
    outcomes = []
    for event in events:
        if isinstance(event, PurchaseCompleted):
            outcomes.append(_purchase(connection, event))
        elif isinstance(event, PurchaseRefunded):
            outcomes.append(_refund(connection, event))
        elif isinstance(event, CustomerIdentified):
            outcomes.append(_identify(connection, event))
        else:
            raise ConnectorError(f"The connector returned an unknown event: {type(event).__name__}")
    return outcomes


def find_card(connection: PosConnection, hint: CustomerHint) -> Card | None:
    """The merchant's open card this hint points to, or None. Never another merchant's card, and
    never a new enrolment: a customer joins a program themselves."""
    cards = Card.objects.filter(merchant_id=connection.merchant_id, status=Card.Status.ACTIVE).select_related(
        "program", "merchant"
    )
    number = (hint.card_number or "").strip().replace(" ", "")
    if number and rules.is_valid_card_number(number):
        card = cards.filter(number=number).first()
        if card:
            return card
    if hint.vendor_customer_id:
        link = PosCustomerLink.objects.filter(
            connection=connection, vendor_customer_id=hint.vendor_customer_id, card__in=cards
        ).select_related("card__program", "card__merchant").first()
        if link:
            return link.card
    if hint.email:
        try:
            email = normalize_email(hint.email)
        except DjangoValidationError:
            email = ""
        card = cards.filter(wallet__customer__user__email__iexact=email).order_by("pk").first() if email else None
        if card:
            return card
    if hint.phone:
        try:
            phone = normalize_phone(hint.phone)
        except DjangoValidationError:
            phone = ""
        card = cards.filter(wallet__customer__user__phone=phone).order_by("pk").first() if phone else None
        if card:
            return card
    return None


def _purchase(connection: PosConnection, event: PurchaseCompleted) -> dict:
    request = PurchaseRequest(
        external_id=event.vendor_id, amount=event.amount, currency=event.currency, store_id=connection.store_id,
        items=list(event.items), occurred_at=event.occurred_at,
    )
    key = connection_key(connection, "purchase", event.vendor_id)
    earlier = Purchase.objects.filter(merchant_id=connection.merchant_id, external_id=event.vendor_id).first()
    if earlier is not None and (earlier.amount, earlier.currency) != (event.amount, event.currency):
        raise PermanentConnectorError(
            f"Sale {event.vendor_id} was already recorded as {earlier.amount} {earlier.currency}; "
            f"this report says {event.amount} {event.currency}. The first record stands."
        )
    card = find_card(connection, event.customer)
    if earlier is not None:
        # Reported before (another webhook for the same sale, a poll, a till): the first report stands.
        # If it had no customer and this one names a card (Square adds the customer after the sale),
        # the sale is attached to the card now and earns, once.
        if earlier.card_id is None and card is not None:
            attached = attach_purchase(card, earlier, idempotency_key=connection_key(
                connection, "attach", event.vendor_id))
            if attached is not None:
                return {"event": "purchase", "vendor_id": event.vendor_id, "matched": True,
                        "purchase_id": attached.purchase_id, "card": card.number,
                        "points_earned": attached.points_earned, "balance": attached.balance,
                        "replayed": attached.replayed}
        return {"event": "purchase", "vendor_id": event.vendor_id, "matched": earlier.card_id is not None,
                "purchase_id": earlier.pk, "points_earned": earlier.points_earned, "replayed": True}
    if card is None:
        result = record_unmatched_purchase(
            connection.merchant, request, receipt_code=event.receipt_code, idempotency_key=key, source="webhook"
        )
        return {"event": "purchase", "vendor_id": event.vendor_id, "matched": result.card_id is not None,
                "purchase_id": result.purchase_id, "replayed": result.replayed}
    result = record_purchase(card, request, idempotency_key=key, source="webhook")
    return {"event": "purchase", "vendor_id": event.vendor_id, "matched": True, "purchase_id": result.purchase_id,
            "card": card.number, "points_earned": result.points_earned, "balance": result.balance,
            "replayed": result.replayed}


def _refund(connection: PosConnection, event: PurchaseRefunded) -> dict:
    purchase = Purchase.objects.filter(merchant_id=connection.merchant_id, external_id=event.purchase_vendor_id).first()
    if purchase is None:
        # Out of order (the refund arrived before its sale, or its sale is held while earning is
        # paused): fail, so a retry, or the held sales' replay, applies it later.
        raise SaleNotSeen(f"Refund {event.refund_id} is for sale {event.purchase_vendor_id}, not seen yet.")
    if event.currency != purchase.currency:
        raise ConnectorError(f"Refund {event.refund_id} is in {event.currency}, its sale in {purchase.currency}.")
    amount = event.amount
    with transaction.atomic():
        result = refund_purchase(
            purchase, amount=amount, idempotency_key=connection_key(connection, "refund", event.refund_id),
            source="webhook", occurred_at=event.occurred_at,
        )
    return {"event": "refund", "vendor_id": event.refund_id, "purchase_id": result.purchase_id,
            "points_reversed": result.points_reversed, "points_returned": result.points_returned,
            "balance": result.balance, "replayed": result.replayed}


def _identify(connection: PosConnection, event: CustomerIdentified) -> dict:
    card = find_card(connection, event.customer)
    if card is None:
        return {"event": "customer", "vendor_id": event.vendor_customer_id, "matched": False}
    PosCustomerLink.objects.update_or_create(
        connection=connection, vendor_customer_id=event.vendor_customer_id, defaults={"card": card}
    )
    return {"event": "customer", "vendor_id": event.vendor_customer_id, "matched": True, "card": card.number}
