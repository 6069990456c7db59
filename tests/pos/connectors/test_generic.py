"""The generic POS webhook, end to end: signed JSON posted to the connection's real URL, processed
as the worker would, and judged by what the customer's card and the ledger show."""
import base64
import datetime as dt
import json
import time
import uuid

import pytest

from core.errors import ValidationFailed
from core.standard_webhooks import sign
from pos_integration.models import PosConnection, PosCustomerLink, WebhookDelivery
from pos_integration.processing import deliveries_to_retry, process_delivery
from tests.factories import make_card
from tests.wallet.helpers import ledger_sum, written_rows
from wallet.models import LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + base64.b64encode(b"generic connector test key 32 b!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a key the sender does not know!!").decode()
SOLD_AT = "2025-03-14T09:30:00+01:00"


@pytest.fixture
def connection(world, make_connection):
    return make_connection(world, "generic", {"signing_secret": SECRET})


def body_of(event_type: str, data: dict) -> bytes:
    return json.dumps({"type": event_type, "timestamp": "2025-03-14T08:30:01Z", "data": data}).encode()


def signed(body: bytes, *, secret=SECRET, msg_id=None, sent_at=None) -> dict:
    return sign(secret, msg_id or f"msg_{uuid.uuid4().hex}", int(sent_at or time.time()), body)


def sale(sale_id="sale-1001", amount=4200, **extra) -> dict:
    return {"id": sale_id, "amount": amount, "currency": "EUR", "occurred_at": SOLD_AT, **extra}


def refund(refund_id, sale_id="sale-1001", **extra) -> dict:
    return {"id": refund_id, "purchase_id": sale_id, "currency": "EUR", "occurred_at": SOLD_AT, **extra}


@pytest.fixture
def deliver(connection, post_webhook):
    """deliver("purchase.completed", data) -> response, signed with the connection's secret."""

    def send(event_type: str, data: dict, **signing):
        body = body_of(event_type, data)
        return post_webhook(connection, body, signed(body, **signing))

    return send


def earn_entries(card):
    return list(card.entries.filter(kind=LedgerEntry.Kind.EARN))


def last_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.order_by("-pk").first()


# Earning, once ------------------------------------------------------------------------------------

def test_a_signed_sale_earns_once_even_when_the_same_delivery_comes_again(world, connection, post_webhook):
    items = [{"name": "Flat white", "sku": "FW", "quantity": 2, "amount": 900}]
    body = body_of("purchase.completed", sale(customer={"card_number": world.card.number}, items=items))
    headers = signed(body, msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")

    first = post_webhook(connection, body, headers)
    again = post_webhook(connection, body, headers)

    assert first.status_code == again.status_code == 200
    world.card.refresh_from_db()
    assert world.card.balance == 42 == ledger_sum(world.card)
    [entry] = earn_entries(world.card)
    assert (entry.delta, entry.source, entry.purchase.external_id) == (42, "webhook", "sale-1001")
    assert entry.purchase.items == items and entry.purchase.store_id == world.store.pk
    assert entry.purchase.occurred_at.isoformat() == "2025-03-14T08:30:00+00:00"
    deliveries = WebhookDelivery.objects.order_by("pk")
    assert [d.vendor_event_id for d in deliveries] == ["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"] * 2
    assert [d.status for d in deliveries] == ["processed", "processed"]
    assert deliveries[1].outcome == [{"duplicate_of": deliveries[0].pk}]


def test_the_same_sale_under_two_webhook_ids_earns_once(world, deliver):
    data = sale(customer={"card_number": world.card.number})
    assert deliver("purchase.completed", data, msg_id="msg_first").status_code == 200
    assert deliver("purchase.completed", data, msg_id="msg_second").status_code == 200

    world.card.refresh_from_db()
    assert world.card.balance == 42 and len(earn_entries(world.card)) == 1
    assert last_delivery().status == "processed" and last_delivery().outcome[0]["replayed"] is True


def test_the_same_sale_id_sent_again_with_another_amount_fails_and_the_first_record_stands(world, deliver):
    deliver("purchase.completed", sale(customer={"card_number": world.card.number}))
    deliver("purchase.completed", sale(amount=99900, customer={"card_number": world.card.number}))

    assert last_delivery().status == "failed" and "already recorded as 4200 EUR" in last_delivery().error
    world.card.refresh_from_db()
    assert world.card.balance == 42 and Purchase.objects.get(external_id="sale-1001").amount == 4200


def test_a_sale_signed_with_the_old_and_the_new_secret_during_rotation_is_accepted(world, connection, post_webhook):
    body = body_of("purchase.completed", sale(customer={"card_number": world.card.number}))
    headers = sign([OTHER_SECRET, SECRET], "msg_rotating", int(time.time()), body)
    assert post_webhook(connection, body, headers).status_code == 200
    world.card.refresh_from_db()
    assert world.card.balance == 42


# Matching the customer ---------------------------------------------------------------------------

def test_a_sale_matched_by_email_earns_on_that_customers_card(world, deliver):
    deliver("purchase.completed", sale(customer={"email": world.customer.user.email.upper()}))
    world.card.refresh_from_db()
    assert world.card.balance == 42


def test_a_pos_customer_identified_once_earns_on_later_sales_by_their_pos_id_alone(world, deliver):
    other_card = make_card(world.program)  # a second customer of the same program, never identified
    deliver("customer.identified", {"pos_customer_id": "cust-77", "card_number": world.card.number})
    assert PosCustomerLink.objects.get(vendor_customer_id="cust-77").card == world.card

    deliver("purchase.completed", sale(customer={"pos_customer_id": "cust-77"}))

    world.card.refresh_from_db()
    other_card.refresh_from_db()
    assert (world.card.balance, other_card.balance) == (42, 0)
    assert Purchase.objects.get(external_id="sale-1001").card == world.card


def test_a_sale_no_card_matches_is_kept_unmatched_with_its_receipt_code_and_earns_nothing(world, deliver):
    entries_before = LedgerEntry.objects.count()
    deliver("purchase.completed", sale(customer={"email": "nobody@example.com"}, receipt_code="R-1042"))

    purchase = Purchase.objects.get(external_id="sale-1001")
    assert (purchase.card, purchase.receipt_code, purchase.amount) == (None, "R-1042", 4200)
    assert LedgerEntry.objects.count() == entries_before
    assert last_delivery().outcome[0]["matched"] is False


# Refunds -----------------------------------------------------------------------------------------

def test_a_refund_without_an_amount_reverses_all_the_points_of_its_sale(world, deliver):
    deliver("purchase.completed", sale(customer={"card_number": world.card.number}))
    deliver("purchase.refunded", refund("refund-1"))

    world.card.refresh_from_db()
    assert world.card.balance == 0 == ledger_sum(world.card)
    [reversal] = world.card.entries.filter(kind=LedgerEntry.Kind.REFUND)
    assert reversal.delta == -42 and reversal.reverses == earn_entries(world.card)[0]
    assert Purchase.objects.get(external_id="sale-1001").status == Purchase.Status.REFUNDED


def test_partial_refunds_reverse_points_pro_rata_and_the_same_refund_twice_reverses_once(world, deliver):
    deliver("purchase.completed", sale(customer={"card_number": world.card.number}))
    deliver("purchase.refunded", refund("refund-1", amount=1000), msg_id="msg_refund_1")
    deliver("purchase.refunded", refund("refund-1", amount=1000), msg_id="msg_refund_1_resent")

    world.card.refresh_from_db()
    assert world.card.balance == 32  # 42 - 42 x 10.00 / 42.00
    assert Purchase.objects.get(external_id="sale-1001").status == Purchase.Status.PARTIALLY_REFUNDED

    deliver("purchase.refunded", refund("refund-2"))  # the rest

    world.card.refresh_from_db()
    assert world.card.balance == 0 == ledger_sum(world.card)
    deltas = sorted(world.card.entries.filter(kind=LedgerEntry.Kind.REFUND).values_list("delta", flat=True))
    assert deltas == [-32, -10]


def test_a_refund_before_its_sale_fails_and_applies_when_retried_after_the_sale(world, deliver):
    deliver("purchase.refunded", refund("refund-early"))
    early = last_delivery()
    assert early.status == "failed" and "sale-1001, not seen yet" in early.error

    deliver("purchase.completed", sale(customer={"card_number": world.card.number}))
    assert process_delivery(early.pk).status == "processed"

    world.card.refresh_from_db()
    assert world.card.balance == 0 and world.card.entries.filter(kind=LedgerEntry.Kind.REFUND).count() == 1


# Rejected before anything is written -------------------------------------------------------------

def _wrong_secret(body):
    return body, signed(body, secret=OTHER_SECRET)


def _changed_after_signing(body):
    return body.replace(b"4200", b"9200"), signed(body)


def _stale(body):
    return body, signed(body, sent_at=time.time() - 6 * 60)


def _from_the_future(body):
    return body, signed(body, sent_at=time.time() + 6 * 60)


def _without(header):
    def build(body):
        headers = signed(body)
        del headers[header]
        return body, headers
    return build


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_wrong_secret, "No v1 signature matches"),
        (_changed_after_signing, "No v1 signature matches"),
        (_stale, "too old"),
        (_from_the_future, "future"),
        (_without("webhook-signature"), "Missing header: webhook-signature"),
        (_without("webhook-timestamp"), "Missing header: webhook-timestamp"),
        (_without("webhook-id"), "Missing header: webhook-id"),
    ],
    ids=["wrong-secret", "body-changed", "stale", "future", "no-signature", "no-timestamp", "no-id"],
)
def test_an_unverified_webhook_gets_401_and_leaves_only_the_rejected_audit_record(
    world, connection, post_webhook, tamper, reason
):
    before = written_rows()
    body, headers = tamper(body_of("purchase.completed", sale(customer={"card_number": world.card.number})))

    response = post_webhook(connection, body, headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert written_rows() == before and PosCustomerLink.objects.count() == 0
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == "rejected" and reason in delivery.rejection_reason


# A verified body that breaks the format ----------------------------------------------------------

@pytest.mark.parametrize(
    ("event_type", "data", "error"),
    [
        ("purchase.completed", {k: v for k, v in sale().items() if k != "amount"}, "data.amount is required"),
        ("purchase.completed", sale(amount="42.00"), "data.amount must be a whole number of minor units"),
        ("purchase.completed", sale(amount=42.5), "data.amount must be a whole number of minor units"),
        ("purchase.completed", sale(amount=0), "data.amount must be between 1 and"),
        ("purchase.completed", sale(amount=-4200), "data.amount must be between 1 and"),
        ("purchase.completed", sale(currency="eur"), "data.currency must be an upper-case ISO 4217 code"),
        ("purchase.completed", sale(occurred_at="2025-03-14T09:30:00"), "data.occurred_at has no UTC offset"),
        ("purchase.completed", sale(occurred_at="14/03/2025 09:30"), "data.occurred_at must be an RFC 3339"),
        ("purchase.completed", sale(occurred_at="2025-02-30T09:30:00Z"), "data.occurred_at is not a real date"),
        ("purchase.completed", sale(customer={"card_no": "123"}), "data.customer has unknown field(s) card_no"),
        ("purchase.completed", sale(items=[{"sku": "FW"}]), "data.items[0].name is required"),
        ("purchase.refunded", refund("refund-1", amount=""), "data.amount must be a whole number"),
        ("purchase.refunded", {"id": "refund-1", "currency": "EUR", "occurred_at": SOLD_AT},
         "data.purchase_id is required"),
        ("customer.identified", {"pos_customer_id": "cust-77"}, "at least one of card_number, email or phone"),
        ("order.paid", sale(), "body.type 'order.paid' is not one of purchase.completed"),
    ],
)
def test_a_verified_but_malformed_payload_fails_the_delivery_with_the_reason_and_writes_nothing(
    deliver, event_type, data, error
):
    before = written_rows()  # read laxly, even a sale with no customer would write an unmatched Purchase

    assert deliver(event_type, data).status_code == 200  # verified: accepted, then judged by the worker

    delivery = last_delivery()
    assert delivery.status == "failed" and error in delivery.error
    assert written_rows() == before and PosCustomerLink.objects.count() == 0
    # The same bytes would fail the same way: no automatic retries (a replay from the admin still can).
    later = delivery.received_at + dt.timedelta(days=1)
    assert delivery.pk not in deliveries_to_retry(later)


def test_a_body_that_is_not_json_fails_the_delivery_and_writes_nothing(connection, post_webhook):
    before = written_rows()
    body = b"amount=4200&currency=EUR"
    assert post_webhook(connection, body, signed(body)).status_code == 200
    assert "The body is not JSON" in last_delivery().error and last_delivery().status == "failed"
    assert written_rows() == before


# Setting the connection up -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "This field is required."),
        ({"signing_secret": "  "}, "This field is required."),
        ({"signing_secret": SECRET[len("whsec_"):]}, "must start with 'whsec_'"),
        ({"signing_secret": "whsec_%%%"}, "not valid base64"),
        ({"signing_secret": "whsec_" + base64.b64encode(b"short").decode()}, "24 to 64 bytes"),
    ],
    ids=["missing", "blank", "no-prefix", "not-base64", "too-short"],
)
def test_a_connection_without_a_valid_signing_secret_is_refused_naming_the_field(
    world, make_connection, values, message
):
    with pytest.raises(ValidationFailed) as refused:
        make_connection(world, "generic", values)
    assert list(refused.value.fields) == ["signing_secret"]
    assert message in refused.value.fields["signing_secret"][0]
    assert PosConnection.objects.count() == 0


def test_the_signing_secret_is_sealed_and_an_unknown_setting_refused(world, make_connection, connection):
    assert SECRET not in connection.secrets_encrypted and connection.config == {}
    with pytest.raises(ValidationFailed) as refused:
        make_connection(world, "generic", {"signing_secret": SECRET, "api_key": "x"})
    assert list(refused.value.fields) == ["api_key"]
