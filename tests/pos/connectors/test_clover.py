"""Clover: notifications carry only a shared auth code and payment ids; points come from the payment
fetched from Clover's REST API (a local fake, tests/pos/connectors/clover_fake.py), and a poll
reconciles what notifications missed.

Clover signs nothing and sends no timestamp: there is no "body changed after signing" or "stale
timestamp" to refuse. What stands in for them is tested instead: a notification whose body was changed
still earns only what Clover's API says, and an old notification sent again earns nothing more.
"""
import copy
import json
import time
from pathlib import Path

import pytest

from core.errors import ValidationFailed
from merchants.models import MerchantSubscription
from pos_integration.connections import connector_for, create_connection, update_connection
from pos_integration.connectors import clover as clover_package
from pos_integration.connectors.clover.connector import OVERLAP_MS
from pos_integration.models import PosConnection, WebhookDelivery
from pos_integration.processing import poll_connection, process_delivery
from pos_integration.tasks import poll_connections_task
from tests.factories import build_world
from tests.pos.connectors.clover_fake import FakeClover
from tests.wallet.helpers import ledger_sum, written_rows
from wallet.models import LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

FIXTURES = Path(clover_package.__file__).parent / "fixtures"
MID, OTHER_MID = "MID0000000001", "MID0000000002"
TOKEN = "clover-test-api-token"
AUTH = "0307e264-b33a-4913-88aa-37b10014a0b8"
PAYMENT_ID, ORDER_ID = "PAY0000000001", "ORD0000000001"


def raw_fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict:
    return json.loads(raw_fixture(name))


def notification(*object_ids: str, merchant_id: str = MID, action: str = "UPDATE", ts: int | None = None) -> bytes:
    ts = ts or int(time.time() * 1000)
    updates = [{"objectId": object_id, "type": action, "ts": ts} for object_id in object_ids]
    return json.dumps({"appId": "APP0000000001", "merchants": {merchant_id: updates}}).encode()


@pytest.fixture
def clover():
    fake = FakeClover(token=TOKEN).start()
    yield fake
    fake.stop()


def settings_for(clover, **overrides) -> dict:
    values = {"clover_merchant_id": MID, "api_token": TOKEN, "auth_code": AUTH, "api_base_url": clover.url}
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


@pytest.fixture
def connection(world, make_connection, clover):
    return make_connection(world, "clover", settings_for(clover))


@pytest.fixture
def notify(post_webhook):
    def send(connection, body: bytes, auth: str | None = AUTH):
        return post_webhook(connection, body, {"X-Clover-Auth": auth} if auth is not None else {})

    return send


def ring_up(clover, world, *, merchant_id=MID, payment=None, order=None, customer=None, email=None, phone=None):
    """A documented sale in the fake Clover: the fixtures' payment, order and customer, the customer's
    email being the world's customer's unless told otherwise; `payment`/`order` override fields."""
    sale_payment = {**fixture("payment"), **(payment or {})}
    sale_order = {**fixture("order"), **(order or {})}
    sale_customer = copy.deepcopy(customer if customer is not None else fixture("customer"))
    sale_customer["emailAddresses"]["elements"][0]["emailAddress"] = email or world.customer.user.email
    if phone is not None:
        sale_customer["phoneNumbers"]["elements"][0]["phoneNumber"] = phone
    clover.add_sale(merchant_id, sale_payment, sale_order, sale_customer)
    return sale_payment


def balance(world) -> int:
    world.card.refresh_from_db()
    assert world.card.balance == ledger_sum(world.card)
    return world.card.balance


def earn_entries(world):
    return LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.EARN)


# -- earning ------------------------------------------------------------------------------------------------


def test_a_documented_notification_earns_the_fetched_payment_once(world, connection, clover, notify):
    ring_up(clover, world)

    first = notify(connection, raw_fixture("notification_payment_created"))
    again = notify(connection, raw_fixture("notification_payment_created"))

    assert first.status_code == 200 and again.status_code == 200
    # 25.99 EUR, tax included; the 3.00 tip earns nothing (1 point per euro, rounded down).
    assert balance(world) == 25
    assert earn_entries(world).count() == 1
    purchase = Purchase.objects.get(external_id=PAYMENT_ID)
    assert (purchase.card, purchase.amount, purchase.currency) == (world.card, 2599, "EUR")
    assert [item["name"] for item in purchase.items] == ["Coffee Mug", "Coffee Mug"]
    deliveries = WebhookDelivery.objects.filter(connection=connection).order_by("pk")
    assert [d.status for d in deliveries] == ["processed", "processed"]
    assert deliveries[1].outcome == [{"duplicate_of": deliveries[0].pk}]


def test_a_later_update_of_the_same_payment_earns_nothing_more(world, connection, clover, notify):
    ring_up(clover, world)
    notify(connection, notification(f"P:{PAYMENT_ID}", action="CREATE"))

    response = notify(connection, notification(f"P:{PAYMENT_ID}", action="UPDATE", ts=int(time.time() * 1000) + 5))

    assert response.status_code == 200
    assert balance(world) == 25 and earn_entries(world).count() == 1


def test_points_come_from_clovers_api_never_from_the_notification_body(world, connection, clover, notify):
    ring_up(clover, world)
    tampered = json.loads(raw_fixture("notification_payment_created"))
    tampered["merchants"][MID][0].update({"amount": 999_999, "result": "SUCCESS", "currency": "EUR"})
    tampered["amount"] = 999_999

    response = notify(connection, json.dumps(tampered).encode())

    assert response.status_code == 200
    assert balance(world) == 25
    assert Purchase.objects.get(external_id=PAYMENT_ID).amount == 2599


@pytest.mark.parametrize("result", ["FAIL", "AUTH", "PENDING", "INITIATED", "OFFLINE_RETRYING"])
def test_a_payment_that_did_not_succeed_earns_nothing(world, connection, clover, notify, result):
    ring_up(clover, world, payment={"result": result})
    before = written_rows()

    response = notify(connection, notification(f"P:{PAYMENT_ID}", action="CREATE"))

    assert response.status_code == 200
    assert written_rows() == before
    assert WebhookDelivery.objects.get(connection=connection).status == "processed"


def test_a_payment_that_succeeds_later_earns_on_its_update(world, connection, clover, notify):
    ring_up(clover, world, payment={"result": "PENDING"})
    notify(connection, notification(f"P:{PAYMENT_ID}", action="CREATE"))
    clover.update_payment(MID, PAYMENT_ID, result="SUCCESS")

    notify(connection, notification(f"P:{PAYMENT_ID}", action="UPDATE"))

    assert balance(world) == 25


# -- verification and rejection -----------------------------------------------------------------------------


def test_the_url_verification_request_is_answered_and_kept_for_the_merchant(world, connection, clover, notify):
    before = written_rows()

    response = notify(connection, raw_fixture("verification"), auth=None)

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get(connection=connection)
    assert delivery.status == "processed" and delivery.outcome == []
    assert json.loads(bytes(delivery.body))["verificationCode"] == "ce7643c1-83ea-4218-abe6-da876c9c7a0a"
    assert written_rows() == before and clover.requests == []


def rejected_only(connection, before) -> bool:
    deliveries = list(WebhookDelivery.objects.filter(connection=connection))
    return written_rows() == before and [d.status for d in deliveries] == ["rejected"]


@pytest.mark.parametrize("auth", [None, "", "0307e264-b33a-4913-88aa-37b10014a0b9", AUTH.upper(), AUTH[:-1]],
                         ids=["missing", "empty", "wrong", "case-changed", "truncated"])
def test_a_notification_without_the_right_auth_code_is_refused_and_only_audited(
    world, connection, clover, notify, auth
):
    ring_up(clover, world)
    before = written_rows()

    response = notify(connection, raw_fixture("notification_payment_created"), auth=auth)

    assert response.status_code == 401
    assert rejected_only(connection, before)
    assert clover.requests == []


def test_a_notification_dressed_as_a_verification_request_still_needs_the_code(world, connection, clover, notify):
    ring_up(clover, world)
    body = json.loads(raw_fixture("notification_payment_created"))
    body["verificationCode"] = "anything"
    before = written_rows()

    response = notify(connection, json.dumps(body).encode(), auth=None)

    assert response.status_code == 401 and rejected_only(connection, before)


def test_the_auth_code_is_masked_in_the_stored_delivery(world, connection, clover, notify):
    ring_up(clover, world)

    notify(connection, raw_fixture("notification_payment_created"))

    delivery = WebhookDelivery.objects.get(connection=connection)
    assert delivery.headers["x-clover-auth"] == "(masked)"
    assert AUTH not in json.dumps(delivery.headers)


def test_until_the_auth_code_is_entered_only_the_verification_request_is_accepted(
    world, make_connection, clover, notify
):
    connection = make_connection(world, "clover", settings_for(clover, auth_code=None))
    ring_up(clover, world)

    assert notify(connection, raw_fixture("verification"), auth=None).status_code == 200
    assert notify(connection, raw_fixture("notification_payment_created"), auth=AUTH).status_code == 401
    assert balance(world) == 0

    update_connection(connection, {**settings_for(clover), "auth_code": AUTH})
    assert notify(connection, raw_fixture("notification_payment_created"), auth=AUTH).status_code == 200
    assert balance(world) == 25


def test_a_valid_auth_code_cannot_credit_another_clover_merchant(world, connection, clover, notify, make_connection):
    theirs = build_world()
    their_connection = make_connection(
        theirs, "clover", settings_for(clover, clover_merchant_id=OTHER_MID, auth_code="their-own-auth-code"))
    ring_up(clover, theirs, merchant_id=OTHER_MID)
    before = written_rows()

    # Our code, on our URL, naming the other Clover merchant's payment: nothing is fetched or applied.
    ours = notify(connection, notification(f"P:{PAYMENT_ID}", merchant_id=OTHER_MID))
    # Our code on their URL: refused.
    theirs_refused = notify(their_connection, notification(f"P:{PAYMENT_ID}", merchant_id=OTHER_MID))

    assert ours.status_code == 200 and theirs_refused.status_code == 401
    assert written_rows() == before
    assert clover.requests == []
    theirs.card.refresh_from_db()
    assert theirs.card.balance == 0


def test_a_batch_for_several_merchants_applies_only_ours(world, connection, clover, notify):
    theirs = build_world()
    ring_up(clover, world)
    ring_up(clover, theirs, merchant_id=OTHER_MID, payment={"id": "PAY0000000002"})
    body = {"appId": "APP0000000001", "merchants": {
        OTHER_MID: [{"objectId": "P:PAY0000000002", "type": "CREATE", "ts": 1718153646000}],
        MID: [{"objectId": f"P:{PAYMENT_ID}", "type": "CREATE", "ts": 1718153645000}],
    }}

    notify(connection, json.dumps(body).encode())

    assert balance(world) == 25
    assert not Purchase.objects.filter(external_id="PAY0000000002").exists()
    assert all(f"/merchants/{MID}/" in path for _method, path, _query in clover.requests)


# -- refunds and voids --------------------------------------------------------------------------------------


def refund(clover, refund_id: str, amount: int, **fields):
    clover.put(MID, "refunds", {**fixture("refund"), "id": refund_id, "amount": amount, **fields})


def test_a_full_refund_reverses_every_point(world, connection, clover, notify):
    ring_up(clover, world)
    notify(connection, raw_fixture("notification_payment_created"))
    refund(clover, "REF0000000001", 2599, taxAmount=199)

    response = notify(connection, notification(f"P:{PAYMENT_ID}"))

    assert response.status_code == 200
    assert balance(world) == 0
    purchase = Purchase.objects.get(external_id=PAYMENT_ID)
    assert (purchase.status, purchase.refunded_amount, purchase.points_reversed) == ("refunded", 2599, 25)


def test_partial_refunds_reverse_pro_rata_and_together_reverse_all(world, connection, clover, notify):
    ring_up(clover, world)
    notify(connection, raw_fixture("notification_payment_created"))

    refund(clover, "REF0000000001", 1000)
    notify(connection, notification(f"P:{PAYMENT_ID}"))
    assert balance(world) == 15  # 25 x 10.00 / 25.99 = 9.6, reversed as 10
    notify(connection, notification(f"P:{PAYMENT_ID}"))  # the same refund seen again
    assert balance(world) == 15

    refund(clover, "REF0000000002", 1599, createdTime=1718250000000)
    notify(connection, notification(f"P:{PAYMENT_ID}"))
    assert balance(world) == 0
    assert LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.REFUND).count() == 2


def test_a_refund_that_also_returns_the_tip_reverses_no_more_than_was_earned(world, connection, clover, notify):
    ring_up(clover, world)
    notify(connection, raw_fixture("notification_payment_created"))
    refund(clover, "REF0000000001", 2899, tipAmount=300)

    notify(connection, notification(f"P:{PAYMENT_ID}"))

    assert balance(world) == 0
    assert WebhookDelivery.objects.filter(connection=connection, status="failed").count() == 0


def test_a_refund_notified_under_its_own_type_key_is_applied(world, connection, clover, notify):
    """The refund type key (`R:`) is unverified; if Clover sends it, the refund's payment is fetched."""
    ring_up(clover, world)
    notify(connection, raw_fixture("notification_payment_created"))
    refund(clover, "REF0000000001", 1000)

    notify(connection, notification("R:REF0000000001", action="CREATE"))

    assert balance(world) == 15


def test_a_voided_payment_gives_its_points_back(world, connection, clover, notify):
    ring_up(clover, world)
    notify(connection, raw_fixture("notification_payment_created"))
    clover.update_payment(MID, PAYMENT_ID, result="VOIDED", modifiedTime=1718153700000)

    notify(connection, notification(f"P:{PAYMENT_ID}"))

    assert balance(world) == 0
    assert Purchase.objects.get(external_id=PAYMENT_ID).status == "refunded"


# -- matching the customer -----------------------------------------------------------------------------------


def test_a_customer_is_matched_by_the_phone_on_their_clover_record(world, connection, clover, notify):
    world.customer.user.phone = "+33612345678"
    world.customer.user.save()
    ring_up(clover, world, email="someone-else@example.com", phone="+33 6 12 34 56 78")

    notify(connection, raw_fixture("notification_payment_created"))

    assert balance(world) == 25


def test_a_card_number_typed_in_the_order_note_matches_and_links_the_clover_customer(
    world, connection, clover, notify
):
    spaced = " ".join(world.card.number[i:i + 4] for i in range(0, len(world.card.number), 4))
    ring_up(clover, world, email="walk-in@example.com", order={"note": f"Loyalty {spaced}"})
    notify(connection, raw_fixture("notification_payment_created"))
    assert balance(world) == 25

    # A later sale by the same Clover customer, with no note and an unknown email, matches by the link.
    ring_up(clover, world, email="walk-in@example.com",
            payment={"id": "PAY0000000002", "order": {"id": "ORD0000000002"}},
            order={"id": "ORD0000000002", "note": ""})
    notify(connection, notification("P:PAY0000000002", action="CREATE"))

    assert balance(world) == 50


def test_a_sale_of_no_known_customer_is_kept_unmatched_with_its_order_id(world, connection, clover, notify):
    ring_up(clover, world, email="stranger@example.com")

    response = notify(connection, raw_fixture("notification_payment_created"))

    assert response.status_code == 200
    purchase = Purchase.objects.get(external_id=PAYMENT_ID)
    assert purchase.card is None and purchase.receipt_code == ORDER_ID and purchase.amount == 2599
    assert LedgerEntry.objects.count() == 0 and balance(world) == 0


# -- configuration -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"api_token": None}, "api_token"),
    ({"clover_merchant_id": None}, "clover_merchant_id"),
    ({"clover_merchant_id": "mid-1"}, "clover_merchant_id"),
    ({"api_base_url": "http://api.clover.com"}, "api_base_url"),
    ({"api_base_url": "api.clover.com"}, "api_base_url"),
    ({"signature_key": "x"}, "signature_key"),
])
def test_a_connection_with_a_missing_or_bad_setting_is_refused_naming_it(world, clover, change, field):
    with pytest.raises(ValidationFailed) as refused:
        create_connection(world.merchant, "clover", "Clover", settings_for(clover, **change))

    assert refused.value.code == "validation_failed" and field in refused.value.fields
    assert not PosConnection.objects.exists()


def test_secrets_are_sealed_and_the_base_url_defaults_to_clovers_production_api(world):
    connection = create_connection(world.merchant, "clover", "Clover",
                                   {"clover_merchant_id": MID, "api_token": TOKEN, "auth_code": AUTH})

    assert connection.config == {"clover_merchant_id": MID}
    assert TOKEN not in connection.secrets_encrypted and AUTH not in connection.secrets_encrypted
    assert str(connector_for(connection).client().http.client.base_url) == "https://api.clover.com"


# -- Clover's API misbehaving --------------------------------------------------------------------------------


def test_a_rate_limited_fetch_waits_as_told_and_then_earns(world, connection, clover, notify):
    ring_up(clover, world)
    clover.fail(429, retry_after="1")

    started = time.monotonic()
    notify(connection, raw_fixture("notification_payment_created"))

    assert time.monotonic() - started >= 1
    assert balance(world) == 25
    assert len(clover.calls("payments", PAYMENT_ID)) == 2


def test_a_clover_outage_leaves_the_delivery_failed_and_a_replay_earns_once(world, connection, clover, notify):
    ring_up(clover, world)
    clover.fail(503, retry_after="0", times=3)

    response = notify(connection, raw_fixture("notification_payment_created"))

    assert response.status_code == 200  # Clover is answered at once; the fetch happens after
    delivery = WebhookDelivery.objects.get(connection=connection)
    assert delivery.status == "failed" and "503" in delivery.error
    assert balance(world) == 0 and not Purchase.objects.exists()

    assert process_delivery(delivery.pk, replay=True).status == "processed"
    assert process_delivery(delivery.pk, replay=True).status == "processed"
    assert balance(world) == 25 and earn_entries(world).count() == 1


# -- reconciliation poll -------------------------------------------------------------------------------------


def now_ms(minutes_ago: float = 0) -> int:
    return int((time.time() - minutes_ago * 60) * 1000)


def test_the_poll_finds_a_payment_whose_notification_never_came_and_a_late_one_earns_nothing_more(
    world, connection, clover, notify
):
    ring_up(clover, world, payment={"createdTime": now_ms(2), "modifiedTime": now_ms(2)})

    assert poll_connections_task() == 1
    assert balance(world) == 25

    late = notify(connection, raw_fixture("notification_payment_created"))
    assert late.status_code == 200
    assert balance(world) == 25 and earn_entries(world).count() == 1
    connection.refresh_from_db()
    assert connection.last_polled_at is not None


def test_the_next_poll_starts_from_the_cursor_less_an_overlap(world, connection, clover):
    poll_connection(connection)
    connection.refresh_from_db()
    cursor = connection.poll_cursor["payments_modified_since"]

    poll_connection(connection)

    last = clover.calls("payments")[-1]
    assert last["filter"] == [f"modifiedTime>={cursor - OVERLAP_MS}"]
    assert last["expand"] == ["refunds"]


def test_the_poll_finds_a_refund_on_an_older_payment(world, connection, clover):
    ring_up(clover, world, payment={"createdTime": now_ms(40), "modifiedTime": now_ms(40)})
    poll_connection(connection)
    assert balance(world) == 25
    refund(clover, "REF0000000001", 1000, createdTime=now_ms())
    connection.refresh_from_db()

    poll_connection(connection)

    assert balance(world) == 15
    # The payment was last modified before the window: the refund listing led to it, fetched by id.
    assert len(clover.calls("payments", PAYMENT_ID)) == 1


def test_one_unusable_payment_does_not_block_the_poll(world, connection, clover):
    ring_up(clover, world, payment={"id": "PAY0000000009", "order": {"id": "ORD0000000009"},
                                    "createdTime": now_ms(3), "modifiedTime": now_ms(3)},
            order={"id": "ORD0000000009", "currency": None})
    ring_up(clover, world, payment={"createdTime": now_ms(2), "modifiedTime": now_ms(2)})

    poll_connection(connection)

    assert balance(world) == 25
    assert not Purchase.objects.filter(external_id="PAY0000000009").exists()
    connection.refresh_from_db()
    assert connection.poll_cursor["payments_modified_since"] >= now_ms(2)


def test_a_poll_during_a_clover_outage_keeps_its_cursor(world, connection, clover):
    poll_connection(connection)
    connection.refresh_from_db()
    cursor = dict(connection.poll_cursor)
    clover.fail(500, retry_after="0", times=3)

    assert poll_connections_task() == 0

    connection.refresh_from_db()
    assert connection.poll_cursor == cursor


def test_a_poll_while_earning_is_paused_waits_and_the_sales_earn_once_the_merchant_pays(
    world, connection, clover, settings
):
    """A lapsed subscription pauses earning; the poll holds its cursor instead of skipping those sales."""
    poll_connection(connection)
    connection.refresh_from_db()
    cursor = dict(connection.poll_cursor)
    settings.TESSERA_BILLING_ENABLED = True  # and this merchant has no subscription
    ring_up(clover, world, payment={"createdTime": now_ms(), "modifiedTime": now_ms()})

    assert poll_connection(connection) == 0

    connection.refresh_from_db()
    assert connection.poll_cursor == cursor and balance(world) == 0
    MerchantSubscription.objects.create(merchant=world.merchant, status=MerchantSubscription.Status.ACTIVE)

    assert poll_connection(connection) == 1
    assert balance(world) == 25
