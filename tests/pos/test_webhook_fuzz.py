"""Fuzzing every POS connector's webhook entry points with what a broken or hostile sender could post.

Each connector in the registry gets, from Hypothesis: random JSON, its own documented fixture payloads
cut short at any byte, the same payloads with known fields replaced by values of the wrong type (or
removed), and random bytes. Whatever comes in:
- `verify_webhook` either accepts or raises `WebhookRejected` (answered 401);
- `parse_webhook` either returns a `ParsedWebhook` of well-formed events or raises `ConnectorError`
  (the delivery fails, permanently for a malformed payload), never another exception: anything else is
  a connector bug that processing can only log as one.
The vendor APIs the parsers read (Square, Stripe, Clover) are the local fakes of tests/pos/connectors.
Then a few fuzzed but correctly signed bodies go through the real URL: never a 5xx, and a body that
does not parse fails its delivery and writes no ledger entry. Bounded: EXAMPLES per connector.
"""
import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import standard_webhooks
from pos_integration import registry
from pos_integration.base import ConnectorError, WebhookRejected
from pos_integration.connections import connector_for
from pos_integration.connectors.square.connector import SquareConnector
from pos_integration.models import WebhookDelivery
from pos_integration.processing import MAX_AUTOMATIC_ATTEMPTS
from pos_integration.types import (
    CustomerHint,
    CustomerIdentified,
    ParsedWebhook,
    PurchaseCompleted,
    PurchaseRefunded,
    WebhookRequest,
)
from tests.pos.connectors.clover_fake import FakeClover
from tests.pos.connectors.square_fake import FakeSquare
from tests.pos.connectors.stripe_fake import FakeStripe
from wallet.models import LedgerEntry

pytestmark = pytest.mark.django_db

EXAMPLES = 50
SIGNED_THROUGH_URL = 6
PUBLIC_URL = "https://tessera.example"
CONNECTORS_DIR = Path(registry.__file__).parent / "connectors"

GENERIC_SECRET = "whsec_" + base64.b64encode(b"generic connector fuzz key 32 b!").decode()
SQUARE_KEY, SQUARE_TOKEN = "wh-sig-fuzz-7c1e", "EAAAl-fuzz-token"
SHOPIFY_SECRET, SHOPIFY_SHOP = "shpss_fuzz0d8b1f2a9c4e7d6b5a3f2e1d0c9b", "cafe-lumiere.myshopify.com"
SHOPIFY_TOPICS = ("orders/create", "orders/paid", "refunds/create", "orders/updated")
STRIPE_SECRET, STRIPE_KEY = "whsec_fuzz5f8c2a6b0d9e4f1a7c3b8e2d6f0a4c", "rk_test_51FuzzRestrictedKey"
CLOVER_MID, CLOVER_TOKEN, CLOVER_AUTH = "MID0000000001", "clover-fuzz-token", "0307e264-fuzz-auth"

# Tessera's own format has no vendor fixtures: these are README.md's three documented events.
GENERIC_SAMPLES = [
    {"type": "purchase.completed", "timestamp": "2025-03-14T09:30:05+01:00", "data": {
        "id": "sale-1042", "amount": 1250, "currency": "EUR", "occurred_at": "2025-03-14T09:30:00+01:00",
        "customer": {"card_number": "1234567890123", "email": "ana@example.org", "phone": "+4915112345678",
                     "pos_customer_id": "C-7"},
        "receipt_code": "R-1042", "items": [{"name": "Flat white", "sku": "FW", "quantity": 2, "amount": 700}]}},
    {"type": "purchase.refunded", "data": {"id": "refund-1", "purchase_id": "sale-1042", "amount": 300,
                                           "currency": "EUR", "occurred_at": "2025-03-14T10:00:00Z"}},
    {"type": "customer.identified", "data": {"pos_customer_id": "C-7", "email": "ana@example.org"}},
]


# -- what comes in ----------------------------------------------------------------------------------------

LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
JSON = st.recursive(
    LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Values that sit at the edges of what parsers convert: times at the ends of the calendar, numbers
# past 64 bits or a timestamp's range, decimals finer than a currency, NUL, an object or list for a scalar.
EDGES = st.sampled_from([
    "", " ", "\x00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-02-30T10:00:00Z",
    "2025-03-14T09:30:00", "1e999", "-1", "0", "42.505", "NaN", "Infinity", "P:", "P:../../x", "COMPLETED",
    "SUCCESS", "succeeded", "paid", "pos", "refund", "success", "EUR", "eur", "\u00e9\u00e9\u00e9",
    0, -1, 1, 2**31, 2**63, 10**20, 253402300800000, -(2**63), 1.5, 1e308, -0.0, float("inf"), float("nan"),
    True, False, None, [], {}, [None], {"id": None}, {"elements": "x"}, {"amount": "1", "currency": 7},
])
ODD = st.one_of(EDGES, EDGES, EDGES, LEAF, JSON)  # the edges three times as often: they find the bugs
REMOVE = object()


def fixture_documents(key: str) -> list:
    folder = CONNECTORS_DIR / key / "fixtures"
    if not folder.is_dir():
        return list(GENERIC_SAMPLES) if key == "generic" else []
    return [json.loads(path.read_bytes()) for path in sorted(folder.glob("*.json"))]


def paths_in(value, prefix=()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for name, inner in value.items():
            found += paths_in(inner, (*prefix, name))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths_in(inner, (*prefix, index))
    return found


def replaced(document, path: tuple, value):
    """`document` with the value at `path` replaced (or removed); unchanged if an earlier change took the path."""
    if not path:
        return document if value is REMOVE else value
    document = copy.deepcopy(document)
    parent = document
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return document
    last = path[-1]
    present = (isinstance(parent, dict) and last in parent) or (
        isinstance(parent, list) and isinstance(last, int) and last < len(parent))
    if not present:
        return document
    if value is REMOVE:
        del parent[last]
    else:
        parent[last] = value
    return document


def encode(document) -> bytes:
    return json.dumps(document).encode()  # NaN and Infinity come out as JS literals, as a sloppy sender's would


@st.composite
def mutated(draw, documents: list):
    document = draw(st.sampled_from(documents))
    for path in draw(st.lists(st.sampled_from(paths_in(document)), min_size=1, max_size=3)):
        document = replaced(document, path, draw(st.one_of(ODD, st.just(REMOVE))))
    return encode(document)


def bodies(documents: list):
    """Random JSON, a fixture cut at any byte, a fixture with wrong values, random bytes."""
    raw = [json.dumps(document, indent=2).encode() for document in documents]
    kinds = [JSON.map(encode), st.binary(max_size=300)]
    if documents:
        kinds += [
            st.sampled_from(raw).flatmap(lambda full: st.integers(0, len(full) - 1).map(lambda cut: full[:cut])),
            mutated(documents),
            mutated(documents),  # twice as likely: they get deepest into the parsers
        ]
    return st.one_of(kinds)


# -- how each vendor signs --------------------------------------------------------------------------------

def sign_generic(connector, body: bytes, topic: str) -> dict:
    return standard_webhooks.sign(GENERIC_SECRET, f"msg_{hashlib.sha256(body).hexdigest()[:24]}", int(time.time()),
                                  body)


def sign_square(connector, body: bytes, topic: str) -> dict:
    digest = hmac.new(SQUARE_KEY.encode(), connector.webhook_url.encode() + body, hashlib.sha256).digest()
    return {"x-square-hmacsha256-signature": base64.b64encode(digest).decode()}


def sign_shopify(connector, body: bytes, topic: str) -> dict:
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    return {"x-shopify-hmac-sha256": base64.b64encode(digest).decode(), "x-shopify-shop-domain": SHOPIFY_SHOP,
            "x-shopify-topic": topic, "x-shopify-event-id": hashlib.sha256(body).hexdigest()[:32]}


def sign_stripe(connector, body: bytes, topic: str) -> dict:
    at = int(time.time())
    digest = hmac.new(STRIPE_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={at},v1={digest}"}


def sign_clover(connector, body: bytes, topic: str) -> dict:
    return {"x-clover-auth": CLOVER_AUTH}


@dataclass(frozen=True)
class Vendor:
    values: dict  # the connection's settings; "{url}" is the vendor fake's address
    sign: object
    topics: tuple = ("",)


VENDORS = {
    "generic": Vendor({"signing_secret": GENERIC_SECRET}, sign_generic),
    "square": Vendor({"signature_key": SQUARE_KEY, "access_token": SQUARE_TOKEN, "api_base_url": "{url}"},
                     sign_square),
    "shopify": Vendor({"shop_domain": SHOPIFY_SHOP, "client_secret": SHOPIFY_SECRET}, sign_shopify, SHOPIFY_TOPICS),
    "stripe": Vendor({"webhook_secret": STRIPE_SECRET, "api_key": STRIPE_KEY, "api_base": "{url}"}, sign_stripe),
    "clover": Vendor({"clover_merchant_id": CLOVER_MID, "api_token": CLOVER_TOKEN, "auth_code": CLOVER_AUTH,
                      "api_base_url": "{url}"}, sign_clover),
}


def fixture_json(key: str, name: str) -> dict:
    return json.loads((CONNECTORS_DIR / key / "fixtures" / name).read_bytes())


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.TESSERA_PUBLIC_URL = PUBLIC_URL


@pytest.fixture
def fakes(monkeypatch):
    """The vendor APIs the parsers may call, holding the fixtures' objects."""
    monkeypatch.setattr(SquareConnector, "sleep", staticmethod(lambda seconds: None))
    square = FakeSquare(access_token=SQUARE_TOKEN).start()
    customer = fixture_json("square", "customer.json")["customer"]
    square.customers[customer["id"]] = customer
    payment = fixture_json("square", "payment_created.json")["data"]["object"]["payment"]
    square.payments[payment["id"]] = payment
    stripe = FakeStripe(api_key=STRIPE_KEY).start()
    for name, store in (("charge.json", stripe.charges), ("customer.json", stripe.customers)):
        found = fixture_json("stripe", name)
        store[found["id"]] = found
    clover = FakeClover(token=CLOVER_TOKEN).start()
    clover.add_sale(CLOVER_MID, fixture_json("clover", "payment.json"), fixture_json("clover", "order.json"),
                    fixture_json("clover", "customer.json"))
    clover.put(CLOVER_MID, "refunds", fixture_json("clover", "refund.json"))
    yield {"square": square, "stripe": stripe, "clover": clover}
    for fake in (square, stripe, clover):
        fake.stop()


@pytest.fixture
def connect(world, make_connection, fakes):
    def build(key: str):
        vendor = VENDORS[key]
        url = fakes[key].url if key in fakes else ""
        values = {name: value.replace("{url}", url) for name, value in vendor.values.items()}
        return make_connection(world, key, values)

    return build


# -- what must come out -----------------------------------------------------------------------------------

def well_formed(parsed) -> None:
    """A parser's normal result: events of the documented types, with the documented field types."""
    assert isinstance(parsed, ParsedWebhook), parsed
    assert isinstance(parsed.events, list) and isinstance(parsed.vendor_event_id, str)
    for event in parsed.events:
        if isinstance(event, PurchaseCompleted):
            assert isinstance(event.vendor_id, str) and event.vendor_id
            assert isinstance(event.amount, int) and isinstance(event.currency, str)
            assert isinstance(event.items, list) and isinstance(event.customer, CustomerHint)
        elif isinstance(event, PurchaseRefunded):
            assert isinstance(event.refund_id, str) and event.refund_id
            assert isinstance(event.purchase_vendor_id, str) and event.purchase_vendor_id
            assert event.amount is None or isinstance(event.amount, int)
            assert isinstance(event.currency, str)
        else:
            assert isinstance(event, CustomerIdentified), event
            assert isinstance(event.customer, CustomerHint)
            continue
        moment = event.occurred_at
        assert isinstance(moment, dt.datetime) and moment.utcoffset() is not None, moment
        moment.astimezone(dt.UTC)  # storable: PostgreSQL keeps it in UTC


def incoming(connector, body: bytes, headers: dict) -> WebhookRequest:
    return WebhookRequest(body=body, headers={name.lower(): value for name, value in headers.items()},
                          url=connector.webhook_url, received_at=timezone.now())


def outcome(connector, request: WebhookRequest) -> ParsedWebhook | ConnectorError:
    """What parse_webhook made of a request: its result, or the documented error. Anything else escapes."""
    try:
        parsed = connector.parse_webhook(request)
    except ConnectorError as error:
        return error
    well_formed(parsed)
    return parsed


def test_every_registered_connector_is_fuzzed():
    assert set(registry.connectors()) == set(VENDORS), "a new connector needs a Vendor entry here"


@pytest.mark.parametrize("key", sorted(VENDORS))
def test_a_parser_answers_any_signed_body_with_events_or_its_documented_error(key, connect):
    connector = connector_for(connect(key))
    vendor = VENDORS[key]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies(fixture_documents(key)), topic=st.sampled_from(vendor.topics))
    def run(body, topic):
        request = incoming(connector, body, vendor.sign(connector, body, topic))
        try:
            connector.verify_webhook(request)
        except WebhookRejected:
            return  # refused before parsing (Stripe signs only UTF-8): answered 401, nothing parsed
        outcome(connector, request)

    run()


@pytest.mark.parametrize("key", sorted(VENDORS))
def test_an_unsigned_or_wrongly_signed_body_is_only_ever_rejected(key, connect):
    connector = connector_for(connect(key))

    @settings(max_examples=EXAMPLES // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies(fixture_documents(key)),
           headers=st.dictionaries(st.sampled_from(sorted(VENDORS[key].sign(connector, b"{}", "orders/paid"))),
                                   st.text(max_size=80), max_size=4))
    def run(body, headers):
        if key == "clover" and headers.get("x-clover-auth", "").strip() == CLOVER_AUTH:
            return
        try:
            connector.verify_webhook(incoming(connector, body, headers))
        except WebhookRejected:
            return
        # Only Clover's URL check passes unsigned, and it carries no events.
        assert key == "clover" and connector.parse_webhook(incoming(connector, body, headers)).events == []

    run()


# One value of each wrong kind: a text where an object or number was, a number past 64 bits, a list where
# an object or a text was. Fields down to SWEEP_DEPTH: deeper ones are left to the random search.
WRONG_TYPES = ("x", 2**64, [1])
SWEEP_DEPTH = 4


@pytest.mark.parametrize("key", sorted(VENDORS))
def test_every_field_of_every_fixture_given_a_wrong_type_gives_events_or_the_documented_error(key, connect):
    """The sweep behind the random search: each known field in turn holds each wrong kind of value."""
    connector = connector_for(connect(key))
    vendor = VENDORS[key]
    for document in fixture_documents(key):
        for path in [path for path in paths_in(document)[1:] if len(path) <= SWEEP_DEPTH]:
            for value in WRONG_TYPES:
                body = encode(replaced(document, path, value))
                for topic in vendor.topics[:3]:
                    request = incoming(connector, body, vendor.sign(connector, body, topic))
                    try:
                        connector.verify_webhook(request)
                    except WebhookRejected:
                        continue
                    try:
                        outcome(connector, request)
                    except Exception as error:
                        raise AssertionError(f"{key}: {path} = {value!r} (topic {topic!r})") from error


@st.composite
def clover_objects(draw):
    """The payment and order Clover's API answers with, with wrong values in known fields."""
    payment, order = fixture_json("clover", "payment.json"), fixture_json("clover", "order.json")
    refund = fixture_json("clover", "refund.json")
    later = {**refund, "id": "REF0000000002", "createdTime": refund["createdTime"] + 1}
    payment["refunds"] = {"elements": [refund, later]}
    order["lineItems"] = {"elements": [{"id": "L1", "name": "Tea", "price": 350, "unitQty": 2000}]}
    for path in draw(st.lists(st.sampled_from(paths_in(payment)[1:]), max_size=4)):
        payment = replaced(payment, path, draw(st.one_of(ODD, st.just(REMOVE))))
    for path in draw(st.lists(st.sampled_from(paths_in(order)[1:]), max_size=4)):
        order = replaced(order, path, draw(st.one_of(ODD, st.just(REMOVE))))
    return payment, order


def test_clover_payments_read_from_its_api_give_events_or_a_connector_error(connect, fakes):
    """A Clover notification holds only ids: what the parser reads is the payment and order it fetches."""
    connector = connector_for(connect("clover"))
    clover = fakes["clover"]
    body = (CONNECTORS_DIR / "clover" / "fixtures" / "notification_payment_created.json").read_bytes()

    # Half the budget: every example is four calls to the fake Clover.
    @settings(max_examples=EXAMPLES // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(objects=clover_objects())
    def run(objects):
        payment, order = objects
        with clover.lock:  # stored under the fixture's ids whatever the fuzz did to the "id" fields
            clover.data[CLOVER_MID]["payments"]["PAY0000000001"] = payment
            clover.data[CLOVER_MID]["orders"]["ORD0000000001"] = order
        outcome(connector, incoming(connector, body, sign_clover(connector, body, "")))

    run()


@pytest.mark.parametrize("key", sorted(VENDORS))
def test_fuzzed_signed_bodies_through_the_real_url_never_5xx_nor_earn_when_they_do_not_parse(
        key, connect, post_webhook, caplog):
    connection = connect(key)
    connector = connector_for(connection)
    vendor = VENDORS[key]

    @settings(max_examples=SIGNED_THROUGH_URL, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies(fixture_documents(key)), topic=st.sampled_from(vendor.topics))
    def run(body, topic):
        headers = vendor.sign(connector, body, topic)
        request = incoming(connector, body, headers)
        try:
            connector.verify_webhook(request)
            expected = outcome(connector, request)
        except WebhookRejected:
            expected = None
        entries = LedgerEntry.objects.count()
        caplog.clear()

        response = post_webhook(connection, body, headers)

        assert response.status_code < 500, response.content
        if expected is None:
            assert response.status_code == 401
        else:
            assert response.status_code == 200, response.content
            delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
            repeat = any("duplicate_of" in outcome for outcome in delivery.outcome or [])
            if isinstance(expected, ConnectorError) and not repeat:  # a repeated event id is skipped unread
                assert delivery.status == WebhookDelivery.Status.FAILED, delivery.error
                assert LedgerEntry.objects.count() == entries
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("pos_integration")]

    run()


@pytest.mark.parametrize("field", ["id", "items"])
def test_a_generic_body_with_a_nul_character_fails_for_good_naming_the_field(field, connect, post_webhook, caplog):
    """Found by the through-URL fuzz: a NUL in a text parsed fine, then failed at the database (a 'connector
    bug' in the log, retried five times). PostgreSQL text holds no NUL, so the reader refuses it."""
    connection = connect("generic")
    connector = connector_for(connection)
    sale = copy.deepcopy(GENERIC_SAMPLES[0])
    if field == "id":
        sale["data"]["id"] = "sale\u0000-1"
    else:
        sale["data"]["items"][0]["name"] = "Tea\u0000"
    body = encode(sale)
    entries = LedgerEntry.objects.count()

    response = post_webhook(connection, body, sign_generic(connector, body, ""))

    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert response.status_code == 200 and delivery.status == WebhookDelivery.Status.FAILED
    assert "NUL" in delivery.error and ("data.id" if field == "id" else "data.items[0].name") in delivery.error
    assert delivery.attempts == MAX_AUTOMATIC_ATTEMPTS  # permanent: the same bytes never parse
    assert LedgerEntry.objects.count() == entries
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
