"""Stripe: documented events, signed the way Stripe signs them, posted to the connection's real webhook URL.

The Stripe REST reads (the charge for its receipt number, the customer for their email, a charge's
refunds) go to a local fake Stripe on a real socket. The merchant of `world` takes EUR, 1 point a euro.
"""
import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

import pos_integration.connectors.stripe as stripe_connector
import pos_integration.connectors.stripe.client as stripe_client
from core.errors import ValidationFailed
from pos_integration.connections import masked_secrets
from pos_integration.models import PosConnection, WebhookDelivery
from pos_integration.processing import deliveries_to_retry, process_delivery
from tests.factories import make_card, make_merchant, make_program, make_store
from tests.pos.connectors.stripe_fake import FakeStripe
from tests.wallet.helpers import ledger_sum, written_rows
from wallet.models import LedgerEntry, Purchase
from wallet.services import claim_purchase

pytestmark = pytest.mark.django_db

FIXTURES = Path(stripe_connector.__file__).parent / "fixtures"
WEBHOOK_SECRET = "whsec_5f8c2a6b0d9e4f1a7c3b8e2d6f0a4c9b"
OLD_WEBHOOK_SECRET = "whsec_0ld5ecret0ld5ecret0ld5ecret00"
API_KEY = "rk_test_51FakeRestrictedKey"
PAYMENT_INTENT = "pi_3PkPi2LkdIwHu7ix0vN1abcd"
CHARGE = "ch_3PkPi2LkdIwHu7ix0Jq1abcd"
CUSTOMER = "cus_Q0abcdEFGH1234"
RECEIPT_NUMBER = "1864-2231"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def stripe_api():
    fake = FakeStripe(api_key=API_KEY).start()
    fake.charges[CHARGE] = {**fixture("charge.json"), "currency": "eur"}
    yield fake
    fake.stop()


@pytest.fixture
def connection(world, make_connection, stripe_api):
    return make_connection(world, "stripe", {
        "webhook_secret": WEBHOOK_SECRET, "api_key": API_KEY, "api_base": stripe_api.url,
    })


def stripe_signature(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """Stripe's scheme, computed here independently of the SDK: hex HMAC-SHA256 of "{t}.{body}"."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def encode(event: dict) -> bytes:
    return json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON


def send(post_webhook, connection, event: dict, **signing):
    body = encode(event)
    return post_webhook(connection, body, {"Stripe-Signature": stripe_signature(body, **signing)})


def sale_event(*, card: str = "", amount: int = 5000, currency: str = "eur", customer=None, receipt_email=None,
               event_id: str = "evt_3PkPi2LkdIwHu7ix0xk3ZAbC", created: int | None = None) -> dict:
    event = fixture("payment_intent.succeeded.json")
    intent = event["data"]["object"]
    intent.update(amount=amount, amount_received=amount, currency=currency, customer=customer,
                  receipt_email=receipt_email, created=created or int(time.time()) - 60)
    intent["metadata"]["tessera_card"] = card
    event["id"] = event_id
    return event


def refund_event(refund_id: str, amount: int, *, kind: str = "refund.created", status: str = "succeeded",
                 event_id: str | None = None) -> dict:
    event = fixture("refund.created.json")
    event.update(id=event_id or f"evt_{refund_id}_{kind}_{status}", type=kind)
    event["data"]["object"].update(id=refund_id, amount=amount, currency="eur", status=status)
    return event


def stripe_refund(refund_id: str, amount: int, *, status: str = "succeeded", created: int) -> dict:
    return {**fixture("refund.created.json")["data"]["object"], "id": refund_id, "amount": amount,
            "currency": "eur", "status": status, "created": created}


def balance(card) -> int:
    card.refresh_from_db()
    assert card.balance == ledger_sum(card)
    return card.balance


def deliveries(connection) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(connection=connection).order_by("pk"))


# -- a sale, once ------------------------------------------------------------------------------------------


def test_a_documented_sale_earns_once_even_when_stripe_delivers_it_twice(world, connection, post_webhook):
    event = sale_event(card=world.card.number, amount=5000, created=1760000000)
    first = send(post_webhook, connection, event)
    assert first.status_code == 200, first.content
    assert balance(world.card) == 50
    purchase = Purchase.objects.get(external_id=PAYMENT_INTENT)
    assert (purchase.card_id, purchase.amount, purchase.currency) == (world.card.pk, 5000, "EUR")
    assert purchase.occurred_at == dt.datetime.fromtimestamp(1760000000, dt.UTC)

    again = send(post_webhook, connection, event)  # Stripe's retry: same evt_, a fresh signature
    assert again.status_code == 200
    assert balance(world.card) == 50
    assert LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.EARN).count() == 1
    first_delivery, second_delivery = deliveries(connection)
    assert first_delivery.vendor_event_id == second_delivery.vendor_event_id == event["id"]
    assert second_delivery.outcome == [{"duplicate_of": first_delivery.pk}]


def test_a_rotated_secret_with_two_v1_signatures_is_accepted_when_the_second_matches(world, connection, post_webhook):
    body = encode(sale_event(card=world.card.number))
    now = int(time.time())
    _, old_secret_v1 = stripe_signature(body, secret=OLD_WEBHOOK_SECRET, at=now).split(",")
    timestamp, current_v1 = stripe_signature(body, at=now).split(",")
    response = post_webhook(connection, body, {"Stripe-Signature": f"{timestamp},{old_secret_v1},{current_v1}"})
    assert response.status_code == 200
    assert balance(world.card) == 50


# -- what is not Stripe's gets 401 and writes only the audit record -------------------------------------------


def _wrong_secret(body):
    return body, {"Stripe-Signature": stripe_signature(body, secret="whsec_someoneElsesEndpointSecret00")}


def _one_byte_changed(body):
    return body.replace(b'"amount_received": 5000', b'"amount_received": 9000'), {
        "Stripe-Signature": stripe_signature(body)}


def _reserialised(body):
    return json.dumps(json.loads(body)).encode(), {"Stripe-Signature": stripe_signature(body)}


def _signed_301_seconds_ago(body):
    return body, {"Stripe-Signature": stripe_signature(body, at=int(time.time()) - 301)}


def _signed_330_seconds_ahead(body):
    # 330, not 301: a second spent between signing and checking on a busy machine must not bring it back in.
    return body, {"Stripe-Signature": stripe_signature(body, at=int(time.time()) + 330)}


def _only_v0(body):
    header = stripe_signature(body).replace(",v1=", ",v0=")  # a valid-looking HMAC under a downgraded scheme
    return body, {"Stripe-Signature": header}


def _no_header(body):
    return body, {}


def _garbled_header(body):
    return body, {"Stripe-Signature": "v1=" + "0" * 64}


@pytest.mark.parametrize("tamper", [
    _wrong_secret, _one_byte_changed, _reserialised, _signed_301_seconds_ago, _signed_330_seconds_ahead, _only_v0,
    _no_header, _garbled_header,
], ids=lambda f: f.__name__.strip("_"))
def test_an_unverified_webhook_gets_401_and_writes_only_the_audit_record(
    world, connection, post_webhook, stripe_api, tamper
):
    body, headers = tamper(encode(sale_event(card=world.card.number)))
    before = written_rows()
    response = post_webhook(connection, body, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert written_rows() == before
    assert Purchase.objects.count() == 0 and balance(world.card) == 0
    [delivery] = deliveries(connection)
    assert delivery.status == WebhookDelivery.Status.REJECTED and delivery.rejection_reason
    assert stripe_api.requests == []  # nothing unverified ever reaches Stripe's API with the merchant's key


# -- refunds --------------------------------------------------------------------------------------------------


def test_a_partial_then_a_final_refund_reverse_the_points_pro_rata(world, connection, post_webhook):
    send(post_webhook, connection, sale_event(card=world.card.number, amount=5000))
    assert balance(world.card) == 50

    partial = refund_event("re_partial", 2000)
    assert send(post_webhook, connection, partial).status_code == 200
    assert balance(world.card) == 30
    assert Purchase.objects.get(external_id=PAYMENT_INTENT).status == Purchase.Status.PARTIALLY_REFUNDED

    send(post_webhook, connection, partial)  # delivered again
    assert balance(world.card) == 30

    send(post_webhook, connection, refund_event("re_rest", 3000))
    assert balance(world.card) == 0
    assert Purchase.objects.get(external_id=PAYMENT_INTENT).status == Purchase.Status.REFUNDED
    assert LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.REFUND).count() == 2


def test_charge_refunded_on_an_old_api_version_reverses_each_embedded_refund(
    world, connection, post_webhook, stripe_api
):
    send(post_webhook, connection, sale_event(card=world.card.number, amount=2899))
    assert balance(world.card) == 28
    event = fixture("charge.refunded.with_refunds.json")  # API 2020-08-27: charge.refunds is filled in
    charge = event["data"]["object"]
    charge["currency"] = "eur"
    for refund in charge["refunds"]["data"]:
        refund["currency"] = "eur"
    assert send(post_webhook, connection, event).status_code == 200
    assert balance(world.card) == 0
    reversals = LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.REFUND).order_by("pk")
    assert [entry.delta for entry in reversals] == [-10, -18]  # 1000 first (10 of 28 pro rata), then the rest
    assert "/v1/refunds" not in stripe_api.paths()


def test_charge_refunded_without_its_refunds_lists_them_from_stripe(world, connection, post_webhook, stripe_api):
    send(post_webhook, connection, sale_event(card=world.card.number, amount=2899))
    stripe_api.refunds["re_first"] = {**stripe_refund("re_first", 1000, created=1714737599), "charge": CHARGE}
    stripe_api.refunds["re_declined"] = {
        **stripe_refund("re_declined", 500, status="failed", created=1714737000), "charge": CHARGE}
    event = fixture("charge.refunded.json")  # API 2024-06-20: no refunds list, amount_refunded is cumulative
    event["data"]["object"]["currency"] = "eur"

    assert send(post_webhook, connection, event).status_code == 200
    assert balance(world.card) == 18  # 28 earned, 10 back for the 1000 refunded; the failed refund moved nothing
    listing = [r for r in stripe_api.requests if r["path"] == "/v1/refunds"]
    assert [r["query"]["charge"] for r in listing] == [CHARGE]
    assert listing[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert listing[0]["headers"]["Stripe-Version"]


def test_charge_refunded_follows_stripes_pages_to_find_every_refund(
    world, connection, post_webhook, stripe_api, monkeypatch
):
    monkeypatch.setattr(stripe_client, "REFUND_PAGE_SIZE", 1)  # three refunds, three pages
    send(post_webhook, connection, sale_event(card=world.card.number, amount=6000))
    for n, amount in enumerate((1000, 2000, 3000)):
        stripe_api.refunds[f"re_{n}"] = stripe_refund(f"re_{n}", amount, created=1714737000 + n)
    charge_refunded = fixture("charge.refunded.json")
    charge_refunded["data"]["object"].update(currency="eur", amount=6000, amount_refunded=6000, refunded=True)
    send(post_webhook, connection, charge_refunded)
    assert balance(world.card) == 0
    pages = [r["query"] for r in stripe_api.requests if r["path"] == "/v1/refunds"]
    assert [page.get("starting_after") for page in pages] == [None, "re_2", "re_1"]


def test_a_refund_seen_by_both_refund_created_and_charge_refunded_reverses_once(
    world, connection, post_webhook, stripe_api
):
    send(post_webhook, connection, sale_event(card=world.card.number, amount=2899))
    send(post_webhook, connection, refund_event("re_first", 1000))
    assert balance(world.card) == 18
    stripe_api.refunds["re_first"] = stripe_refund("re_first", 1000, created=1714737599)
    charge_refunded = fixture("charge.refunded.json")
    charge_refunded["data"]["object"]["currency"] = "eur"
    assert send(post_webhook, connection, charge_refunded).status_code == 200
    assert balance(world.card) == 18
    assert LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.REFUND).count() == 1


def test_a_pending_refund_reverses_nothing_until_refund_updated_says_it_succeeded(world, connection, post_webhook):
    send(post_webhook, connection, sale_event(card=world.card.number, amount=5000))
    send(post_webhook, connection, refund_event("re_bank", 2000, status="pending"))
    assert balance(world.card) == 50
    send(post_webhook, connection, refund_event("re_bank", 2000, kind="refund.updated", status="failed"))
    assert balance(world.card) == 50
    send(post_webhook, connection, refund_event("re_card", 2000, status="pending"))
    send(post_webhook, connection, refund_event("re_card", 2000, kind="refund.updated"))
    assert balance(world.card) == 30


def test_a_refund_that_arrives_before_its_sale_is_applied_when_retried(world, connection, post_webhook):
    assert send(post_webhook, connection, refund_event("re_early", 2000)).status_code == 200
    [early] = deliveries(connection)
    assert early.status == WebhookDelivery.Status.FAILED and PAYMENT_INTENT in early.error
    send(post_webhook, connection, sale_event(card=world.card.number, amount=5000))
    assert process_delivery(early.pk).status == WebhookDelivery.Status.PROCESSED
    assert balance(world.card) == 30


# -- who bought ---------------------------------------------------------------------------------------------


def test_a_sale_without_a_card_matches_by_the_email_stripe_has_for_its_customer(
    world, connection, post_webhook, stripe_api
):
    stripe_api.customers[CUSTOMER] = {**fixture("customer.json"), "email": world.customer.user.email.upper()}
    assert send(post_webhook, connection, sale_event(customer=CUSTOMER, amount=4200)).status_code == 200
    assert balance(world.card) == 42
    assert f"/v1/customers/{CUSTOMER}" in stripe_api.paths()


def test_a_sale_matches_by_its_receipt_email_even_when_stripe_no_longer_has_the_customer(
    world, connection, post_webhook, stripe_api
):
    event = sale_event(customer="cus_deletedSince", receipt_email=world.customer.user.email, amount=4200)
    assert send(post_webhook, connection, event).status_code == 200
    assert balance(world.card) == 42
    assert deliveries(connection)[0].status == WebhookDelivery.Status.PROCESSED


@pytest.mark.parametrize("receipt_number, expected_code", [(RECEIPT_NUMBER, RECEIPT_NUMBER), (None, PAYMENT_INTENT)])
def test_a_sale_matching_no_card_is_kept_with_the_receipt_code_and_earns_when_claimed(
    world, connection, post_webhook, stripe_api, receipt_number, expected_code
):
    stripe_api.charges[CHARGE]["receipt_number"] = receipt_number
    stripe_api.customers[CUSTOMER] = {**fixture("customer.json"), "email": "someone-else@example.com"}
    entries = LedgerEntry.objects.count()
    assert send(post_webhook, connection, sale_event(customer=CUSTOMER, amount=3500)).status_code == 200
    purchase = Purchase.objects.get(external_id=PAYMENT_INTENT)
    assert purchase.card is None and purchase.receipt_code == expected_code and purchase.amount == 3500
    assert LedgerEntry.objects.count() == entries and balance(world.card) == 0

    claim_purchase(world.card, receipt_code=expected_code, amount=3500, idempotency_key="claim-1")
    assert balance(world.card) == 35


def test_an_isk_sale_earns_on_whole_kronur_not_on_stripes_two_decimal_amount(make_connection, post_webhook, stripe_api):
    merchant = make_merchant(currency="ISK", time_zone="Atlantic/Reykjavik")
    card = make_card(make_program(merchant))
    connection = make_connection(SimpleNamespace(merchant=merchant, store=make_store(merchant)), "stripe", {
        "webhook_secret": WEBHOOK_SECRET, "api_key": API_KEY, "api_base": stripe_api.url})
    stripe_api.charges[CHARGE]["currency"] = "isk"
    send(post_webhook, connection, sale_event(card=card.number, amount=250000, currency="isk"))  # 2,500 kr
    assert Purchase.objects.get(external_id=PAYMENT_INTENT).amount == 2500
    assert balance(card) == 2500


# -- when Stripe's API is slow or down ---------------------------------------------------------------------


def test_a_rate_limited_read_is_retried_and_the_sale_still_earns(world, connection, post_webhook, stripe_api):
    stripe_api.fail(429, retry_after="0")
    send(post_webhook, connection, sale_event(card=world.card.number, amount=5000))
    assert balance(world.card) == 50
    assert stripe_api.paths().count(f"/v1/charges/{CHARGE}") == 2


def test_an_outage_at_stripe_fails_the_delivery_writes_nothing_and_a_replay_earns(
    world, connection, post_webhook, stripe_api
):
    stripe_api.fail(503, times=3, retry_after="0")
    before = written_rows()
    assert send(post_webhook, connection, sale_event(card=world.card.number, amount=5000)).status_code == 200
    [delivery] = deliveries(connection)
    assert delivery.status == WebhookDelivery.Status.FAILED and "503" in delivery.error
    assert written_rows() == before

    assert process_delivery(delivery.pk, replay=True).status == WebhookDelivery.Status.PROCESSED
    assert balance(world.card) == 50


def test_a_revoked_api_key_fails_the_delivery_with_a_message_naming_the_setting(
    world, connection, post_webhook, stripe_api
):
    stripe_api.api_key = "rk_test_theNewKeyNobodyEnteredYet"
    send(post_webhook, connection, sale_event(card=world.card.number))
    [delivery] = deliveries(connection)
    assert delivery.status == WebhookDelivery.Status.FAILED and "api_key" in delivery.error
    assert balance(world.card) == 0


def test_event_types_that_earn_nothing_are_acknowledged_and_ignored(world, connection, post_webhook, stripe_api):
    event = sale_event(card=world.card.number)
    event["type"] = "payment_intent.payment_failed"
    event["data"]["object"].update(status="requires_payment_method", amount_received=0)
    before = written_rows()
    assert send(post_webhook, connection, event).status_code == 200
    assert deliveries(connection)[0].status == WebhookDelivery.Status.PROCESSED
    assert written_rows() == before and stripe_api.requests == []


def test_a_thin_event_is_acknowledged_but_fails_for_good_since_it_carries_no_payment(
    world, connection, post_webhook
):
    thin = {"id": "evt_test_65R9Ijk8d2fV7gN1c0", "object": "v2.core.event", "type": "v1.payment_intent.succeeded",
            "created": "2026-01-01T00:00:00.000Z", "related_object": {"id": PAYMENT_INTENT, "type": "payment_intent"}}
    before = written_rows()
    assert send(post_webhook, connection, thin).status_code == 200
    [delivery] = deliveries(connection)
    assert delivery.status == WebhookDelivery.Status.FAILED and "thin" in delivery.error
    assert delivery.pk not in deliveries_to_retry(now=timezone.now() + dt.timedelta(days=1))
    assert written_rows() == before


# -- setting the connection up ------------------------------------------------------------------------------


@pytest.mark.parametrize("values, field", [
    ({"api_key": API_KEY}, "webhook_secret"),
    ({"webhook_secret": WEBHOOK_SECRET}, "api_key"),
    ({"webhook_secret": "5f8c2a6b0d9e4f1a", "api_key": API_KEY}, "webhook_secret"),
    ({"webhook_secret": WEBHOOK_SECRET, "api_key": "pk_live_51Publishable"}, "api_key"),
    ({"webhook_secret": WEBHOOK_SECRET, "api_key": API_KEY, "api_base": "http://10.0.0.5:8080"}, "api_base"),
])
def test_a_connection_with_a_missing_or_wrong_setting_is_refused_naming_it(world, make_connection, values, field):
    with pytest.raises(ValidationFailed) as refused:
        make_connection(world, "stripe", values)
    assert field in refused.value.fields
    assert not PosConnection.objects.exists()


def test_the_keys_are_kept_as_secrets_not_as_plain_config(connection, stripe_api):
    assert connection.config == {"api_base": stripe_api.url}
    assert set(masked_secrets(connection)) == {"webhook_secret", "api_key"}
    assert WEBHOOK_SECRET not in str(masked_secrets(connection))
