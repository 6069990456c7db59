"""Shopify POS: order and refund webhooks, signed as Shopify signs them, posted to the real URL."""
import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from core.errors import ValidationFailed
from pos_integration.connectors.shopify import mapping
from pos_integration.models import PosCustomerLink, WebhookDelivery
from pos_integration.processing import deliveries_to_retry
from tests.factories import make_card, make_merchant, make_program
from tests.wallet.helpers import ledger_sum, written_rows
from wallet.models import LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

FIXTURES = Path(mapping.__file__).parent / "fixtures"
SECRET = "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"
SHOP = "cafe-lumiere.myshopify.com"
ORDER_ID = "5550001112223"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def pos_order(card_number: str = "", **changes) -> dict:
    """The documented POS orders/paid body (EUR 42.50, order #1042), with the card in a note attribute."""
    order = copy.deepcopy(fixture("orders_paid_pos.json"))
    order["customer"]["email"] = order["email"] = order["contact_email"] = "stranger@example.com"
    if card_number:
        order["note_attributes"] = [{"name": "tessera_card", "value": card_number}]
    order.update(changes)
    return order


def refund(amount: str, **changes) -> dict:
    body = copy.deepcopy(fixture("refunds_create.json"))
    body["transactions"][0]["amount"] = amount
    body.update(changes)
    return body


def sign(body: bytes, secret: str = SECRET) -> str:
    """Shopify's scheme, written out here rather than borrowed from the connector."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers_for(body: bytes, topic: str = "orders/paid", *, event_id: str = "", secret: str = SECRET,
                shop: str = SHOP) -> dict:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-05-02T14:03:11.482Z",
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
    }


def encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
def shopify(world, make_connection):
    return make_connection(world, "shopify", {"shop_domain": SHOP, "client_secret": SECRET})


@pytest.fixture
def deliver(shopify, post_webhook):
    """deliver(payload_dict, topic) -> response, signed and sent to the world's Shopify connection."""

    def send(payload: dict, topic: str = "orders/paid", **header_options):
        body = encode(payload)
        return post_webhook(shopify, body, headers_for(body, topic, **header_options))

    return send


def earn_entries(card):
    return card.entries.filter(kind=LedgerEntry.Kind.EARN)


def last_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.order_by("-pk").first()


# Earning ---------------------------------------------------------------------------------------

def test_a_paid_pos_order_earns_on_its_total_once(world, shopify, post_webhook):
    body = encode(pos_order(world.card.number))
    headers = headers_for(body)

    first = post_webhook(shopify, body, headers)
    again = post_webhook(shopify, body, headers)

    assert first.status_code == 200 and again.status_code == 200
    world.card.refresh_from_db()
    assert world.card.balance == 42 == ledger_sum(world.card)  # EUR 42.50 at 1 point per euro
    assert earn_entries(world.card).count() == 1
    purchase = Purchase.objects.get(external_id=ORDER_ID)
    assert (purchase.card, purchase.amount, purchase.currency) == (world.card, 4250, "EUR")
    assert purchase.items[0] == {"sku": "MUG-BLK-12", "title": "Coffee Mug", "quantity": 2, "unit_price": 2000}
    assert purchase.occurred_at.isoformat() == "2026-05-02T14:03:09+00:00"
    statuses = list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["processed", "processed"]


def test_a_retry_with_the_same_event_id_earns_once_and_is_marked_a_duplicate(world, deliver):
    event_id = "5e1f9a44-0000-4c2d-8b7e-evt123"
    deliver(pos_order(world.card.number), event_id=event_id)
    first = last_delivery()
    response = deliver(pos_order(world.card.number), event_id=event_id)

    assert response.status_code == 200
    assert last_delivery().vendor_event_id == event_id
    assert last_delivery().outcome == [{"duplicate_of": first.pk}]
    assert earn_entries(world.card).count() == 1


def test_orders_create_and_orders_paid_for_the_same_order_earn_once(world, deliver):
    deliver(pos_order(world.card.number), "orders/create")
    deliver(pos_order(world.card.number), "orders/paid")

    world.card.refresh_from_db()
    assert world.card.balance == 42 and earn_entries(world.card).count() == 1
    assert Purchase.objects.filter(external_id=ORDER_ID).count() == 1
    assert last_delivery().status == "processed" and last_delivery().outcome[-1]["replayed"] is True


def test_an_order_created_unpaid_earns_only_when_it_is_paid(world, deliver):
    deliver(pos_order(world.card.number, financial_status="pending"), "orders/create")
    world.card.refresh_from_db()
    assert world.card.balance == 0 and not Purchase.objects.exists()

    deliver(pos_order(world.card.number), "orders/paid")
    world.card.refresh_from_db()
    assert world.card.balance == 42


def test_a_yen_order_converts_without_decimals(make_connection, post_webhook):
    merchant = make_merchant(currency="JPY", time_zone="Asia/Tokyo")
    card = make_card(make_program(merchant))
    connection = make_connection(merchant, "shopify", {"shop_domain": SHOP, "client_secret": SECRET})
    order = pos_order(card.number, currency="JPY", presentment_currency="JPY", total_price="1500")
    order["line_items"] = [dict(order["line_items"][0], quantity=1, price="1500")]
    body = encode(order)

    post_webhook(connection, body, headers_for(body))

    card.refresh_from_db()
    purchase = Purchase.objects.get(external_id=ORDER_ID)
    assert card.balance == 1500 and purchase.amount == 1500 and purchase.items[0]["unit_price"] == 1500


def test_a_euro_amount_is_read_exactly_not_through_a_float(world, deliver):
    deliver(pos_order(world.card.number, total_price="0.29"))  # float("0.29") * 100 == 28.999999999999996
    assert Purchase.objects.get(external_id=ORDER_ID).amount == 29


def test_an_amount_finer_than_the_currency_allows_fails_and_writes_nothing(world, deliver):
    before = written_rows()
    response = deliver(pos_order(world.card.number, total_price="42.505"))

    assert response.status_code == 200  # verified and kept; processing refuses it, replayable after a fix
    assert last_delivery().status == "failed" and "more decimals than EUR" in last_delivery().error
    assert written_rows() == before


@pytest.mark.parametrize("field, value", [("total_price", "forty"), ("currency", "euro"),
                                          ("processed_at", "yesterday")])
def test_an_unreadable_order_fails_for_good_instead_of_being_retried(world, deliver, field, value):
    """The same bytes would fail on every retry: only a replay from the admin (after a fix) runs it again."""
    deliver(pos_order(world.card.number, **{field: value}))
    assert last_delivery().status == "failed"
    assert last_delivery().pk not in deliveries_to_retry(now=timezone.now() + dt.timedelta(days=1))


def test_an_order_id_beyond_two_to_the_53_is_kept_exactly(world, deliver):
    deliver(pos_order(world.card.number, id=820982911946154508))
    assert Purchase.objects.filter(external_id="820982911946154508").exists()


def test_a_250_line_order_is_answered_well_within_shopifys_five_seconds(world, deliver):
    line = pos_order()["line_items"][1]
    lines = [dict(line, id=line["id"] + n) for n in range(250)]
    started = time.monotonic()
    response = deliver(pos_order(world.card.number, line_items=lines, total_price="625.00"))

    assert response.status_code == 200 and time.monotonic() - started < 5
    assert len(Purchase.objects.get(external_id=ORDER_ID).items) == 250


# Which orders earn ------------------------------------------------------------------------------

def test_an_online_order_of_the_same_shop_earns_nothing_by_default(world, deliver):
    deliver(pos_order(world.card.number, source_name="web", location_id=None))
    world.card.refresh_from_db()
    assert world.card.balance == 0 and not Purchase.objects.exists()
    assert last_delivery().status == "processed"


def test_online_orders_earn_when_the_merchant_turns_pos_only_off(world, make_connection, post_webhook):
    connection = make_connection(world, "shopify", {"shop_domain": SHOP, "client_secret": SECRET, "pos_only": "no"})
    body = encode(pos_order(world.card.number, source_name="web", location_id=None))
    post_webhook(connection, body, headers_for(body))
    world.card.refresh_from_db()
    assert world.card.balance == 42


def test_a_shopify_test_order_earns_nothing(world, deliver):
    deliver(pos_order(world.card.number, test=True))
    world.card.refresh_from_db()
    assert world.card.balance == 0 and not Purchase.objects.exists()


def test_an_orders_updated_delivery_changes_nothing(world, deliver):
    """A retried orders/updated carries its original (possibly stale) payload. Tessera keeps no
    order state to overwrite: an update, old or new, changes neither the sale nor the points."""
    deliver(pos_order(world.card.number))
    deliver(pos_order(world.card.number, total_price="99.00"), "orders/updated")

    world.card.refresh_from_db()
    assert world.card.balance == 42 and Purchase.objects.get(external_id=ORDER_ID).amount == 4250
    assert last_delivery().status == "processed" and last_delivery().outcome == []


# Who bought ------------------------------------------------------------------------------------

def test_the_customer_is_matched_by_the_email_on_the_shopify_customer(world, deliver):
    order = pos_order()
    order["customer"]["email"] = world.customer.user.email.upper()
    deliver(order)
    world.card.refresh_from_db()
    assert world.card.balance == 42


def test_a_card_number_typed_in_the_order_note_is_found(world, deliver):
    number = world.card.number
    grouped = " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    deliver(pos_order(note=f"Loyalty card {grouped}, call +33 6 12 34 56 78"))
    world.card.refresh_from_db()
    assert world.card.balance == 42


def test_a_card_scanned_once_links_the_shopify_customer_for_later_sales(world, deliver):
    deliver(pos_order(world.card.number))
    assert PosCustomerLink.objects.get(vendor_customer_id="6660001112223").card == world.card

    deliver(pos_order(id=5550001112999, name="#1043", order_number=1043))  # same customer, no card this time
    world.card.refresh_from_db()
    assert world.card.balance == 84 and earn_entries(world.card).count() == 2


def test_a_sale_matching_no_card_is_kept_with_its_receipt_code_and_earns_nothing(world, deliver):
    entries_before = LedgerEntry.objects.count()
    deliver(pos_order())

    purchase = Purchase.objects.get(external_id=ORDER_ID)
    assert purchase.card is None and purchase.receipt_code == "#1042" and purchase.amount == 4250
    assert LedgerEntry.objects.count() == entries_before


# Refunds ---------------------------------------------------------------------------------------

def test_a_full_refund_reverses_every_point(world, deliver):
    deliver(pos_order(world.card.number))
    deliver(refund("42.50"), "refunds/create")

    world.card.refresh_from_db()
    assert world.card.balance == 0 == ledger_sum(world.card)
    reversal = world.card.entries.get(kind=LedgerEntry.Kind.REFUND)
    assert reversal.delta == -42 and reversal.reverses == earn_entries(world.card).get()
    assert Purchase.objects.get(external_id=ORDER_ID).status == Purchase.Status.REFUNDED


def test_a_partial_refund_reverses_points_pro_rata_and_once(world, deliver):
    deliver(pos_order(world.card.number))
    deliver(refund("20.00"), "refunds/create")  # one mug of 42.50: 42 x 20/42.50 = 19.8 -> 20
    deliver(refund("20.00"), "refunds/create")  # Shopify's retry of the same refund

    world.card.refresh_from_db()
    assert world.card.balance == 22 == ledger_sum(world.card)
    purchase = Purchase.objects.get(external_id=ORDER_ID)
    assert purchase.status == Purchase.Status.PARTIALLY_REFUNDED and purchase.refunded_amount == 2000


def test_a_split_tender_refund_adds_its_successful_transactions_only(world, deliver):
    deliver(pos_order(world.card.number))
    body = refund("20.00")
    cash = dict(body["transactions"][0], id=1230001112224, gateway="cash", amount="2.50")
    declined = dict(body["transactions"][0], id=1230001112225, status="failure", amount="20.00")
    body["transactions"] += [cash, declined]
    deliver(body, "refunds/create")

    world.card.refresh_from_db()
    assert Purchase.objects.get(external_id=ORDER_ID).refunded_amount == 2250
    assert world.card.balance == 42 - 22  # 42 x 22.50/42.50 = 22.2 -> 22


def test_a_restock_without_money_back_reverses_nothing(world, deliver):
    deliver(pos_order(world.card.number))
    deliver(refund("20.00", transactions=[]), "refunds/create")

    world.card.refresh_from_db()
    assert world.card.balance == 42 and last_delivery().status == "processed"


# Verification ----------------------------------------------------------------------------------

def _hex_signature(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


REJECTIONS = {
    "wrong secret": lambda body, headers: {**headers, "X-Shopify-Hmac-Sha256": sign(body, "shpss_not_the_secret")},
    "hex instead of base64": lambda body, headers: {**headers, "X-Shopify-Hmac-Sha256": _hex_signature(body)},
    "missing signature": lambda body, headers: {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"},
    "missing shop domain": lambda body, headers: {k: v for k, v in headers.items() if k != "X-Shopify-Shop-Domain"},
    # Same app, same secret, another merchant's shop: the signature is valid but the sale is not ours.
    "another shop": lambda body, headers: {**headers, "X-Shopify-Shop-Domain": "other-shop.myshopify.com"},
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_an_unverified_delivery_gets_401_and_only_an_audit_row(world, shopify, post_webhook, case):
    body = encode(pos_order(world.card.number))
    before = written_rows()

    response = post_webhook(shopify, body, REJECTIONS[case](body, headers_for(body)))

    assert response.status_code == 401
    assert written_rows() == before
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["rejected"]


def test_a_body_changed_after_signing_gets_401(world, shopify, post_webhook):
    signed = encode(pos_order(world.card.number))
    tampered = encode(pos_order(world.card.number, total_price="4250.00"))
    before = written_rows()

    response = post_webhook(shopify, tampered, headers_for(signed))

    assert response.status_code == 401 and written_rows() == before
    assert WebhookDelivery.objects.get().status == "rejected"


def test_the_previous_secret_still_verifies_during_a_rotation(world, make_connection, post_webhook):
    connection = make_connection(world, "shopify", {
        "shop_domain": SHOP, "client_secret": "shpss_new", "previous_client_secret": SECRET,
    })
    body = encode(pos_order(world.card.number))
    assert post_webhook(connection, body, headers_for(body, secret=SECRET)).status_code == 200
    assert post_webhook(connection, body, headers_for(body, secret="shpss_new")).status_code == 200
    assert post_webhook(connection, body, headers_for(body, secret="shpss_older")).status_code == 401


# Configuration ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "field"), [
    ({"shop_domain": SHOP}, "client_secret"),
    ({"client_secret": SECRET}, "shop_domain"),
    ({"shop_domain": "https://cafe-lumiere.myshopify.com/", "client_secret": SECRET}, "shop_domain"),
    ({"shop_domain": "cafe-lumiere.com", "client_secret": SECRET}, "shop_domain"),
    ({"shop_domain": SHOP, "client_secret": SECRET, "pos_only": "sometimes"}, "pos_only"),
])
def test_a_connection_with_a_missing_or_malformed_setting_is_refused(world, make_connection, values, field):
    with pytest.raises(ValidationFailed) as refused:
        make_connection(world, "shopify", values)
    assert refused.value.http_status == 400 and field in refused.value.fields
