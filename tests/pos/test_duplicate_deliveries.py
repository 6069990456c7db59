"""One vendor event delivered twice at the same instant: both copies get a 2xx, one of them owns the
event and is processed, the other is kept as its duplicate, and the card earns once.

A unique index on (connection, vendor event id) decides which copy owns the event, whatever the
timing; the webhook view answers the copy that lost the insert as it answers any repeat. The two
copies are posted by two threads, each with its own Django test client, through the real webhook
URL, signed as each vendor signs (the connector tests' helpers); the processing task runs eagerly
after commit as a worker would. PostgreSQL only, except the constraint's own test.
"""
import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client

from pos_integration.models import WebhookDelivery
from tests.concurrency import run_together
from tests.pos.connectors import test_generic as generic_tests
from tests.pos.connectors import test_shopify as shopify_tests
from tests.pos.connectors import test_square as square_tests
from tests.pos.connectors import test_stripe as stripe_tests
from tests.pos.connectors.test_generic import connection as generic_connection  # noqa: F401 - fixture
from tests.pos.connectors.test_shopify import shopify  # noqa: F401 - fixture
from tests.pos.connectors.test_square import connection as square_connection  # noqa: F401 - fixture
from tests.pos.connectors.test_square import public_url, square, waits  # noqa: F401 - fixtures
from tests.pos.connectors.test_stripe import connection as stripe_connection  # noqa: F401 - fixture
from tests.pos.connectors.test_stripe import stripe_api  # noqa: F401 - fixture
from tests.wallet.helpers import ledger_sum
from wallet.models import LedgerEntry, Purchase

EVENT_ID_OF_SALE = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def concurrent(test):
    """Real threads commit for real (no test transaction to hide in), on PostgreSQL, processed eagerly."""
    marks = (pytest.mark.usefixtures("eager_celery"), pytest.mark.django_db(transaction=True), pytest.mark.postgres)
    for mark in marks:
        test = mark(test)
    return test


def post_at_once(connection, body: bytes, headers: dict) -> list[int]:
    """The same signed bytes posted by two clients released together; returns both status codes."""
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}

    def post(_index):
        client = Client(raise_request_exception=False)  # a 500 must show as a status, not end the thread
        response = client.generic(
            "POST", f"/hooks/pos/{connection.pk}/", body, content_type="application/json", **extra
        )
        return response.status_code

    return run_together(2, post)


def assert_applied_once(world, connection, statuses, *, event_id: str, external_id: str, points: int):
    assert statuses == [200, 200], statuses  # both copies acknowledged, so the vendor stops retrying
    copies = list(WebhookDelivery.objects.filter(connection=connection, vendor_event_id=event_id).order_by("pk"))
    owners = [copy for copy in copies if copy.duplicate_of_id is None]
    assert len(owners) == 1, [(c.pk, c.status, c.outcome) for c in copies]  # one delivery row owns the event
    [owner] = owners
    assert owner.status == WebhookDelivery.Status.PROCESSED and owner.error == ""
    assert [(c.duplicate_of_id, c.outcome, c.attempts) for c in copies if c is not owner] == [
        (owner.pk, [{"duplicate_of": owner.pk}], 0)
    ]  # the other copy is kept for audit and was never processed
    assert Purchase.objects.filter(external_id=external_id).count() == 1
    earned = LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.EARN)
    assert [entry.delta for entry in earned] == [points]
    world.card.refresh_from_db()
    assert world.card.balance == points == ledger_sum(world.card)
    call_command("check_ledger")  # raises if any balance differs from its entries


@concurrent
def test_a_stripe_event_delivered_twice_at_once_earns_once(world, stripe_connection):  # noqa: F811
    event = stripe_tests.sale_event(card=world.card.number, amount=5000)
    body = stripe_tests.encode(event)
    statuses = post_at_once(stripe_connection, body, {"Stripe-Signature": stripe_tests.stripe_signature(body)})
    assert_applied_once(world, stripe_connection, statuses, event_id=event["id"],
                        external_id=stripe_tests.PAYMENT_INTENT, points=50)


@concurrent
def test_a_square_event_delivered_twice_at_once_earns_once(world, square_connection):  # noqa: F811
    event = square_tests.payment_event()  # 25.99 EUR + a 3.00 tip, paid by the world's customer
    body = json.dumps(event).encode()
    signature = square_tests.sign(square_tests.SIGNATURE_KEY, square_tests.our_url(square_connection), body)
    statuses = post_at_once(square_connection, body, {"x-square-hmacsha256-signature": signature})
    assert_applied_once(world, square_connection, statuses, event_id=event["event_id"],
                        external_id="pay_123", points=25)


@concurrent
def test_a_shopify_event_delivered_twice_at_once_earns_once(world, shopify):  # noqa: F811
    body = shopify_tests.encode(shopify_tests.pos_order(world.card.number))  # EUR 42.50
    headers = shopify_tests.headers_for(body, event_id="5e1f9a44-0000-4c2d-8b7e-evt123")
    statuses = post_at_once(shopify, body, headers)
    assert_applied_once(world, shopify, statuses, event_id=headers["X-Shopify-Event-Id"],
                        external_id=shopify_tests.ORDER_ID, points=42)


@concurrent
def test_a_standard_webhook_delivered_twice_at_once_earns_once(world, generic_connection):  # noqa: F811
    body = generic_tests.body_of("purchase.completed", generic_tests.sale(customer={"card_number": world.card.number}))
    statuses = post_at_once(generic_connection, body, generic_tests.signed(body, msg_id=EVENT_ID_OF_SALE))
    assert_applied_once(world, generic_connection, statuses, event_id=EVENT_ID_OF_SALE,
                        external_id="sale-1001", points=42)


@pytest.mark.django_db
def test_the_database_refuses_a_second_delivery_row_for_one_event(world, generic_connection, make_connection):  # noqa: F811
    def store(event_id, connection=generic_connection, **fields):
        return WebhookDelivery.objects.create(
            connection=connection, headers={}, body=b"{}", status=WebhookDelivery.Status.RECEIVED,
            vendor_event_id=event_id, **fields,
        )

    owner = store(EVENT_ID_OF_SALE)
    with pytest.raises(IntegrityError), transaction.atomic():
        store(EVENT_ID_OF_SALE)
    store(EVENT_ID_OF_SALE, duplicate_of=owner)  # a repeat kept for audit, marked as such, is allowed
    store("")  # deliveries that carry no event id (a rejected one, a vendor that sends none) are not
    store("")  # constrained
    assert WebhookDelivery.objects.filter(connection=generic_connection).count() == 4
    other_till = make_connection(world, "generic", {"signing_secret": generic_tests.SECRET}, name="Second POS")
    store(EVENT_ID_OF_SALE, connection=other_till)  # unique per connection: another POS may reuse an id
