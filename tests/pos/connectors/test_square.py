"""Square: completed payments earn and completed refunds reverse, delivered through the real webhook URL,
signed as Square signs (HMAC-SHA256 over the notification URL + raw body), with the Customers and
Payments APIs served by a local fake Square (square_fake.py)."""
import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from django.utils import timezone

from core.errors import ValidationFailed
from pos_integration.connectors import square as square_package
from pos_integration.connectors.square.connector import SquareConnector
from pos_integration.models import PosConnection, WebhookDelivery
from pos_integration.processing import deliveries_to_retry, process_delivery
from tests.factories import build_world
from tests.pos.connectors.square_fake import FakeSquare
from tests.wallet.helpers import ledger_sum, written_rows
from wallet.models import LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

FIXTURES = Path(square_package.__file__).parent / "fixtures"
PUBLIC_URL = "https://tessera.example"
SIGNATURE_KEY = "wh-sig-2b7f1c9e0d4a"
ACCESS_TOKEN = "EAAAl-test-token-5c1e"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def sign(key: str, url: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()).decode()


def our_url(connection) -> str:
    return f"{PUBLIC_URL}/hooks/pos/{connection.pk}/"


def payment_event(name="payment_updated.json", *, event_id=None, **payment_fields) -> dict:
    event = fixture(name)
    if event_id:
        event["event_id"] = event_id
    payment = event["data"]["object"]["payment"]
    payment.update(payment_fields)
    event["data"]["id"] = payment["id"]
    return event


def refund_event(amount: int, *, refund_id="pay_123_ref_555", status="COMPLETED", name="refund_updated.json",
                 event_id=None, payment_id="pay_123") -> dict:
    event = fixture(name)
    event["event_id"] = event_id or f"evt-{refund_id}-{status}"
    refund = event["data"]["object"]["refund"]
    refund.update(id=refund_id, status=status, payment_id=payment_id, amount_money=money(amount))
    event["data"]["id"] = refund_id
    return event


def money(amount: int) -> dict:
    return {"amount": amount, "currency": "EUR"}


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.TESSERA_PUBLIC_URL = PUBLIC_URL


@pytest.fixture(autouse=True)
def waits(monkeypatch):
    """What the client would have slept (Retry-After, backoff), recorded instead of slept."""
    recorded = []
    monkeypatch.setattr(SquareConnector, "sleep", staticmethod(recorded.append))
    return recorded


@pytest.fixture
def square(world):
    fake = FakeSquare(access_token=ACCESS_TOKEN).start()
    customer = fixture("customer.json")["customer"]
    customer["email_address"] = world.customer.user.email
    fake.customers[customer["id"]] = customer
    yield fake
    fake.stop()


@pytest.fixture
def connection(world, square, make_connection):
    return make_connection(world, "square", {
        "signature_key": SIGNATURE_KEY, "access_token": ACCESS_TOKEN, "api_base_url": square.url,
    })


@pytest.fixture
def send(post_webhook):
    """send(connection, event) -> response: the event's bytes, signed over our notification URL."""

    def deliver(connection, event, *, url=None):
        body = json.dumps(event).encode()
        signature = sign(SIGNATURE_KEY, url or our_url(connection), body)
        return post_webhook(connection, body, {"x-square-hmacsha256-signature": signature})

    return deliver


def earn_entries(card):
    return list(card.entries.filter(kind=LedgerEntry.Kind.EARN))


def balance(card) -> int:
    card.refresh_from_db()
    assert card.balance == ledger_sum(card)
    return card.balance


# -- earning ---------------------------------------------------------------------------------------------


def test_a_completed_payment_earns_on_its_amount_not_the_tip(world, connection, send):
    response = send(connection, payment_event())  # 25.99 EUR + 3.00 EUR tip
    assert response.status_code == 200, response.content
    assert balance(world.card) == 25
    assert [entry.delta for entry in earn_entries(world.card)] == [25]
    purchase = Purchase.objects.get(external_id="pay_123")
    assert (purchase.card, purchase.amount, purchase.currency) == (world.card, 2599, "EUR")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "processed" and delivery.vendor_event_id == "3f1c2b7a-0000-4d7e-8a11-evt123456789"


def test_the_same_delivery_sent_again_earns_nothing_more(world, connection, post_webhook):
    body = json.dumps(payment_event()).encode()
    headers = {"x-square-hmacsha256-signature": sign(SIGNATURE_KEY, our_url(connection), body)}
    assert post_webhook(connection, body, headers).status_code == 200
    assert post_webhook(connection, body, headers).status_code == 200
    assert len(earn_entries(world.card)) == 1 and balance(world.card) == 25
    assert Purchase.objects.count() == 1
    assert WebhookDelivery.objects.filter(status="processed").count() == 2


def test_payment_created_and_updated_for_one_payment_earn_once(world, connection, send):
    assert send(connection, payment_event("payment_created.json", status="COMPLETED")).status_code == 200
    assert send(connection, payment_event("payment_updated.json")).status_code == 200
    assert len(earn_entries(world.card)) == 1 and balance(world.card) == 25
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}


def test_an_approved_payment_earns_only_once_it_is_completed(world, connection, send):
    send(connection, payment_event("payment_created.json"))  # APPROVED: delayed capture, may still be voided
    assert balance(world.card) == 0 and Purchase.objects.count() == 0
    send(connection, payment_event("payment_updated.json"))
    assert balance(world.card) == 25


@pytest.mark.parametrize("status", ["CANCELED", "FAILED", "PENDING"])
def test_a_payment_that_took_no_money_earns_nothing(world, connection, send, status):
    before = written_rows()
    assert send(connection, payment_event(status=status)).status_code == 200
    assert written_rows() == before
    assert WebhookDelivery.objects.get().status == "processed"


def test_other_square_events_are_acknowledged_and_change_nothing(world, connection, send, square):
    before = written_rows()
    for event_type, object_type in (("order.created", "order"), ("customer.updated", "customer")):
        event = {"merchant_id": "MRC_123", "type": event_type, "event_id": f"evt-{event_type}",
                 "created_at": "2025-03-14T18:22:05.118Z",
                 "data": {"type": object_type, "id": "x_1", "object": {object_type: {"id": "x_1"}}}}
        assert send(connection, event).status_code == 200
    assert written_rows() == before
    assert [d.outcome for d in WebhookDelivery.objects.all()] == [[], []]
    assert square.requests == []


def test_a_signed_body_that_is_not_a_square_notification_fails_for_good_and_writes_nothing(world, connection,
                                                                                              post_webhook):
    before = written_rows()
    for body in (b"not json", json.dumps({"type": "payment.updated", "event_id": "e1", "data": {}}).encode()):
        headers = {"x-square-hmacsha256-signature": sign(SIGNATURE_KEY, our_url(connection), body)}
        assert post_webhook(connection, body, headers).status_code == 200
    assert written_rows() == before
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["failed", "failed"]
    assert deliveries_to_retry(timezone.now() + dt.timedelta(days=1)) == []  # the same bytes would fail again


def test_sales_at_another_location_are_ignored_when_a_location_is_set(world, square, make_connection, send):
    connection = make_connection(world, "square", {
        "signature_key": SIGNATURE_KEY, "access_token": ACCESS_TOKEN, "api_base_url": square.url,
        "location_id": "loc_999",
    })
    send(connection, payment_event())  # at loc_456
    assert Purchase.objects.count() == 0
    send(connection, payment_event(event_id="evt-here", location_id="loc_999"))
    assert balance(world.card) == 25


# -- matching the customer -----------------------------------------------------------------------------


def test_a_card_number_in_the_note_matches_without_asking_square(world, connection, send, square):
    grouped = " ".join(world.card.number[i:i + 4] for i in range(0, len(world.card.number), 4))
    send(connection, payment_event(note=f"Loyalty card {grouped}", customer_id=None))
    assert balance(world.card) == 25
    assert square.requests == []


def test_a_card_number_of_another_merchant_in_the_note_earns_nothing_there(world, connection, send):
    theirs = build_world()
    send(connection, payment_event(note=theirs.card.number, customer_id=None))
    assert balance(theirs.card) == 0 and balance(world.card) == 0
    assert Purchase.objects.get().card is None


def test_the_square_customer_matches_by_phone_when_the_email_is_unknown(world, connection, send, square):
    world.customer.user.phone = "+33612345678"
    world.customer.user.save()
    square.customers["cust_321"].update(email_address="someone.else@example.com", phone_number="+33 6 12 34 56 78")
    send(connection, payment_event())
    assert balance(world.card) == 25
    assert square.paths() == ["/v2/customers/cust_321"]


def test_a_card_number_saved_as_the_square_customers_reference_id_matches(world, connection, send, square):
    square.customers["cust_321"].update(email_address="", reference_id=world.card.number)
    send(connection, payment_event())
    assert balance(world.card) == 25


def test_the_buyer_email_on_the_payment_matches_a_sale_without_a_customer(world, connection, send, square):
    send(connection, payment_event(customer_id=None, buyer_email_address=world.customer.user.email.upper()))
    assert balance(world.card) == 25
    assert square.requests == []


def test_a_sale_whose_customer_matches_no_card_is_kept_with_its_receipt_number(world, connection, send, square):
    square.customers["cust_321"].update(email_address="stranger@example.com", phone_number="+15555550123")
    assert send(connection, payment_event()).status_code == 200
    purchase = Purchase.objects.get()
    assert (purchase.card, purchase.receipt_code, purchase.amount) == (None, "R7Q2", 2599)
    assert LedgerEntry.objects.filter(purchase=purchase).count() == 0 and balance(world.card) == 0
    assert WebhookDelivery.objects.get().outcome[0]["matched"] is False


def test_a_customer_square_no_longer_has_leaves_the_sale_unmatched(world, connection, send, square):
    del square.customers["cust_321"]  # Square answers 404 for a deleted or merged profile
    send(connection, payment_event())
    assert Purchase.objects.get().card is None
    assert WebhookDelivery.objects.get().status == "processed"


# -- the Customers API: authentication, rate limits, outages ---------------------------------------------


def test_a_429_is_waited_out_as_square_asks_then_the_sale_earns(world, connection, send, square, waits):
    square.fail(429, retry_after="2")
    send(connection, payment_event())
    assert balance(world.card) == 25
    assert waits == [2.0]
    assert square.paths() == ["/v2/customers/cust_321"] * 2
    for _method, _path, headers in square.requests:
        assert headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert headers["square-version"] == "2025-08-20"


def test_square_failing_after_the_retries_fails_the_delivery_and_a_replay_applies_it(world, connection, send,
                                                                                     square, waits):
    square.fail(503, times=3)
    before = written_rows()
    assert send(connection, payment_event()).status_code == 200  # acknowledged: Square must not resend
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "503" in delivery.error
    assert written_rows() == before and len(waits) == 2
    assert deliveries_to_retry(timezone.now() + dt.timedelta(days=1)) == [delivery.pk]  # retried later
    assert process_delivery(delivery.pk, replay=True).status == "processed"
    assert balance(world.card) == 25


def test_a_revoked_access_token_fails_the_delivery_without_retrying(world, square, make_connection, send):
    connection = make_connection(world, "square", {
        "signature_key": SIGNATURE_KEY, "access_token": "EAAAl-revoked", "api_base_url": square.url,
    })
    send(connection, payment_event())
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "UNAUTHORIZED" in delivery.error
    assert len(square.requests) == 1 and Purchase.objects.count() == 0


# -- refunds ---------------------------------------------------------------------------------------------


def sell(send, connection, square, *, amount: int, tip: int = 0):
    """A completed payment of `amount` (+ `tip`) that Square also serves from GET /v2/payments/pay_123."""
    event = payment_event(amount_money=money(amount), tip_money=money(tip), total_money=money(amount + tip))
    square.payments["pay_123"] = copy.deepcopy(event["data"]["object"]["payment"])
    assert send(connection, event).status_code == 200


def test_a_full_refund_reverses_all_the_points(world, connection, send, square):
    sell(send, connection, square, amount=5000)
    assert balance(world.card) == 50
    send(connection, refund_event(5000))
    assert balance(world.card) == 0
    assert [e.delta for e in world.card.entries.filter(kind=LedgerEntry.Kind.REFUND)] == [-50]
    assert Purchase.objects.get().status == Purchase.Status.REFUNDED


def test_partial_refunds_reverse_pro_rata_and_together_all(world, connection, send, square):
    sell(send, connection, square, amount=5000)
    send(connection, refund_event(1000, refund_id="pay_123_ref_1"))
    assert balance(world.card) == 40
    send(connection, refund_event(4000, refund_id="pay_123_ref_2"))
    assert balance(world.card) == 0


def test_a_refund_of_a_tipped_payment_reverses_only_the_goods_share(world, connection, send, square):
    sell(send, connection, square, amount=4000, tip=1000)  # earns 40 on the goods
    send(connection, refund_event(2500, refund_id="pay_123_ref_1"))  # half the total: half the goods
    assert balance(world.card) == 20
    send(connection, refund_event(2500, refund_id="pay_123_ref_2"))  # the rest, tip included
    assert balance(world.card) == 0
    assert Purchase.objects.get().status == Purchase.Status.REFUNDED


def test_a_refund_reverses_only_once_it_completes_and_only_once(world, connection, send, square):
    sell(send, connection, square, amount=5000)
    send(connection, refund_event(1000, status="PENDING", name="refund_created.json"))
    assert balance(world.card) == 50
    send(connection, refund_event(1000))
    send(connection, refund_event(1000, event_id="evt-a-later-refund-updated"))
    assert balance(world.card) == 40
    assert world.card.entries.filter(kind=LedgerEntry.Kind.REFUND).count() == 1


@pytest.mark.parametrize("status", ["REJECTED", "FAILED"])
def test_a_refund_that_did_not_go_through_reverses_nothing(world, connection, send, square, status):
    sell(send, connection, square, amount=5000)
    send(connection, refund_event(5000, status=status))
    assert balance(world.card) == 50


def test_the_payment_update_that_follows_a_refund_earns_nothing_again(world, connection, send, square):
    sell(send, connection, square, amount=5000)
    send(connection, refund_event(5000))
    after_refund = payment_event(event_id="evt-payment-refunded", amount_money=money(5000), tip_money=money(0),
                                 total_money=money(5000), refunded_money=money(5000), refund_ids=["pay_123_ref_555"])
    send(connection, after_refund)
    assert balance(world.card) == 0 and len(earn_entries(world.card)) == 1


# -- verification: 401 and nothing but the audit row -------------------------------------------------------


REJECTIONS = {
    "wrong signature key": lambda url, body: (body, {
        "x-square-hmacsha256-signature": sign("not-the-key", url, body)}),
    "body changed after signing": lambda url, body: (body.replace(b"2599", b"9999"), {
        "x-square-hmacsha256-signature": sign(SIGNATURE_KEY, url, body)}),
    "missing signature header": lambda url, body: (body, {}),
    "the right HMAC in hex instead of base64": lambda url, body: (body, {
        "x-square-hmacsha256-signature": hmac.new(SIGNATURE_KEY.encode(), url.encode() + body,
                                                  hashlib.sha256).hexdigest()}),
    "legacy x-square-signature only": lambda url, body: (body, {
        "x-square-signature": base64.b64encode(
            hmac.new(SIGNATURE_KEY.encode(), url.encode() + body, hashlib.sha1).digest()).decode()}),
    "signed over the URL without its trailing slash": lambda url, body: (body, {
        "x-square-hmacsha256-signature": sign(SIGNATURE_KEY, url.rstrip("/"), body)}),
    "signed over http instead of https": lambda url, body: (body, {
        "x-square-hmacsha256-signature": sign(SIGNATURE_KEY, url.replace("https://", "http://"), body)}),
    "signed over the host a proxy forwarded to": lambda url, body: (body, {
        "x-square-hmacsha256-signature": sign(SIGNATURE_KEY, url.replace("tessera.example", "web-1:8000"), body)}),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_an_unverified_webhook_gets_401_and_writes_only_the_audit_row(world, connection, post_webhook, square,
                                                                      case):
    body, headers = REJECTIONS[case](our_url(connection), json.dumps(payment_event()).encode())
    before = written_rows()
    response = post_webhook(connection, body, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert written_rows() == before
    assert Purchase.objects.count() == 0 and not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EARN).exists()
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["rejected"]
    assert square.requests == []


def test_a_webhook_signed_over_the_registered_notification_url_is_accepted(world, square, make_connection, send):
    registered = "https://loyalty.cafe.example/square/webhooks?shop=1"
    connection = make_connection(world, "square", {
        "signature_key": SIGNATURE_KEY, "access_token": ACCESS_TOKEN, "api_base_url": square.url,
        "notification_url": registered,
    })
    assert send(connection, payment_event()).status_code == 401  # signed over our own URL: not what Square uses
    assert send(connection, payment_event(), url=registered).status_code == 200
    assert balance(world.card) == 25


# -- configuration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["signature_key", "access_token"])
def test_a_connection_without_a_required_secret_is_refused_naming_it(world, make_connection, missing):
    values = {"signature_key": SIGNATURE_KEY, "access_token": ACCESS_TOKEN}
    values[missing] = ""
    with pytest.raises(ValidationFailed) as refused:
        make_connection(world, "square", values)
    assert refused.value.http_status == 400 and missing in refused.value.fields
    assert PosConnection.objects.count() == 0


@pytest.mark.parametrize(("field", "value"), [
    ("api_base_url", "http://connect.squareup.com"),  # the access token would travel in clear text
    ("api_base_url", "connect.squareup.com"),
    ("notification_url", "/hooks/pos/1/"),
    ("merchant_secret", "x"),
])
def test_a_connection_with_a_bad_setting_is_refused_naming_it(world, make_connection, field, value):
    with pytest.raises(ValidationFailed) as refused:
        make_connection(world, "square", {"signature_key": SIGNATURE_KEY, "access_token": ACCESS_TOKEN, field: value})
    assert field in refused.value.fields
    assert PosConnection.objects.count() == 0


def test_secrets_are_sealed_and_the_signature_header_is_kept_for_audit(world, connection, send):
    assert SIGNATURE_KEY not in json.dumps(connection.config) and ACCESS_TOKEN not in connection.secrets_encrypted
    send(connection, payment_event())
    assert "x-square-hmacsha256-signature" in WebhookDelivery.objects.get().headers
