"""The webhook CRM connector, driven by the real delivery engine against a receiving server on a real
socket (webhook_receiver.py) that verifies our signatures and keeps exactly-once state, as the
README asks a consumer to. Time moves through `now=`, never by sleeping (except the one timeout)."""
import base64
import datetime as dt
import email.utils
import json
import re
import socket
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from core import standard_webhooks
from core.errors import ValidationFailed
from crm_sync import registry
from crm_sync.connections import connector_for, create_connection
from crm_sync.connectors import webhook as webhook_package
from crm_sync.connectors.webhook.connector import WebhookCrmConnector
from crm_sync.delivery import deliver_batch, retry_dead_letters
from crm_sync.fanout import fan_out
from crm_sync.models import CrmDelivery
from crm_sync.profiles import outbound_events
from tests.crm.webhook_receiver import WebhookReceiver
from tests.factories import make_card
from tests.wallet.helpers import buy
from wallet.models import DomainEvent
from wallet.services.preferences import set_channel_consent
from wallet.services.privacy import erase_customer

pytestmark = pytest.mark.django_db

CONNECTOR = "crm_sync.connectors.webhook.connector.WebhookCrmConnector"
README = Path(webhook_package.__file__).parent / "README.md"
SECRET = "whsec_" + base64.b64encode(b"webhook connector test key, 32b!").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the rotated-in key, also 32 bytes").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a key the receiver does not know").decode()
Status = CrmDelivery.Status


@pytest.fixture(autouse=True)
def webhook_connector_installed(settings):
    settings.TESSERA_CRM_CONNECTORS = [CONNECTOR]
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def receiver():
    server = WebhookReceiver(secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def connect(world, receiver):
    """connect(batch_size=5, max_attempts=3, ...) -> a webhook connection to the receiver."""

    def make(*, max_attempts=8, **values):
        values = {"url": receiver.url, "signing_secret": SECRET, **values}
        return create_connection(world.merchant, "webhook", "Orders system", values, max_attempts=max_attempts)

    return make


def ship(connection, now=None):
    now = now or timezone.now()
    fan_out(connection.pk, now=now)
    return deliver_batch(connection.pk, now=now)


def drive(connection, *, start=None, rounds=200) -> dt.datetime:
    """Deliver until nothing is pending; when nothing is due, move the clock to the next retry time."""
    now = start or timezone.now()
    fan_out(connection.pk, now=now)
    for _ in range(rounds):
        sent = deliver_batch(connection.pk, now=now).sent
        pending = CrmDelivery.objects.filter(connection=connection, status=Status.PENDING)
        if not pending.exists():
            return now
        if not sent:
            now = pending.filter(next_attempt_at__gt=now).order_by("next_attempt_at").first().next_attempt_at
    raise AssertionError("deliveries still pending after every round")


def deliveries(connection):
    return list(CrmDelivery.objects.filter(connection=connection).order_by("event_id"))


def event_ids(merchant, **filters) -> list[str]:
    return [f"evt_{pk}" for pk in DomainEvent.objects.filter(merchant=merchant, **filters)
            .order_by("pk").values_list("pk", flat=True)]


def sent_events(receiver) -> list[dict]:
    return [event for request in receiver.requests for event in json.loads(request.body)["events"]]


# --- the request ---------------------------------------------------------------------------------


def test_events_arrive_as_one_signed_post_in_the_documented_format(world, receiver, connect):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    buy(world.card, 4200)
    connection = connect()

    report = ship(connection)

    assert report.delivered == report.sent == len(event_ids(world.merchant)) >= 4
    [request] = receiver.requests
    assert request.status == 200  # the receiver verified the signature, path, content type and shape
    assert request.headers["content-type"] == "application/json"
    assert request.webhook_id.startswith("batch_")
    assert request.headers["webhook-signature"].startswith("v1,")
    events = json.loads(request.body)["events"]
    assert [e["id"] for e in events] == event_ids(world.merchant)
    sale = next(e for e in events if e["type"] == "wallet.purchase.recorded")
    world.card.refresh_from_db()
    assert sale["data"]["amount"] == 4200 and sale["data"]["currency"] == "EUR"
    assert sale["merchant_id"] == world.merchant.pk and sale["occurred_at"].endswith("Z")
    assert sale["customer"]["email"] == world.customer.user.email
    assert sale["customer"]["consents"] == {"email": True}
    assert sale["card"] == {"id": world.card.pk, "number": world.card.number, "program": world.program.name,
                            "balance": 42, "lifetime_points": 42, "tier": "Silver", "status": "active"}


def test_every_event_carries_the_card_as_it_is_when_sent(world, receiver, connect):
    buy(world.card, 30000)  # 300 points
    buy(world.card, 30000)  # 600 points: Gold from now on
    ship(connect())

    cards = {json.dumps(e["card"]) for e in sent_events(receiver)}
    assert [json.loads(c)["tier"] for c in cards] == ["Gold"]  # even the enrolment shows today's card
    assert json.loads(cards.pop())["balance"] == 600
    assert "wallet.tier.changed" in {e["type"] for e in sent_events(receiver)}


def test_erased_customer_is_sent_as_an_id_without_personal_data(world, receiver, connect):
    address = world.customer.user.email
    buy(world.card, 1000)
    erase_customer(world.customer)
    ship(connect())

    events = sent_events(receiver)
    assert {json.dumps(e["customer"]) for e in events} == {json.dumps({"id": world.customer.pk, "erased": True})}
    assert "wallet.customer.erased" in [e["type"] for e in events]
    assert all(address.encode() not in request.body for request in receiver.requests)


def test_rotation_signs_with_the_new_and_the_previous_secret(world, receiver, connect):
    buy(world.card, 1000)
    ship(connect(signing_secret=NEW_SECRET, previous_signing_secret=SECRET))  # the receiver knows the old one

    [request] = receiver.requests
    assert request.status == 200
    assert len(request.headers["webhook-signature"].split()) == 2
    assert standard_webhooks.verify(NEW_SECRET, request.headers, request.body) == request.webhook_id


# --- batch sizes ---------------------------------------------------------------------------------


def test_requests_hold_at_most_the_configured_batch_size(world, receiver, connect):
    for _ in range(5):
        buy(world.card, 1000)
    connection = connect(batch_size="4")

    drive(connection)

    total = len(event_ids(world.merchant))
    assert receiver.batch_sizes() == [4] * (total // 4) + ([total % 4] if total % 4 else [])
    assert len(receiver.events) == total


def test_default_batch_is_50_events(world, receiver, connect):
    for _ in range(30):
        buy(world.card, 1000)

    drive(connect())

    assert receiver.batch_sizes() == [50, len(event_ids(world.merchant)) - 50]


def test_a_longer_list_is_split_and_a_failing_request_fails_only_its_events(world, receiver, connect):
    for _ in range(5):
        buy(world.card, 1000)
    connection = connect(batch_size=4)
    events = outbound_events(list(DomainEvent.objects.filter(merchant=world.merchant).order_by("pk")),
                             world.merchant.pk)
    receiver.fail(503, after=1)

    results = connector_for(connection).push(events)

    assert receiver.batch_sizes() == [4] and [r.event_id for r in results] == [e.event_id for e in events]
    assert [r.ok for r in results] == [True] * 4 + [False] * (len(events) - 4)
    assert all(r.retryable and "503" in r.error for r in results[4:])


# --- failures and retries ------------------------------------------------------------------------


def test_server_errors_then_recovery_deliver_every_event_once_in_customer_order(world, receiver, connect):
    other_card = make_card(world.program)
    for amount in (1000, 2500, 4000):
        buy(world.card, amount)
        buy(other_card, amount + 100)
    connection = connect(batch_size=3)
    # The first two batches are applied by the consumer and then answered 500 (it crashed before
    # replying): the resends are true duplicates. Two more 500s apply nothing.
    receiver.fail(500, times=2, record_first=True)
    receiver.fail(500, times=2)

    drive(connection)

    assert all(d.status == Status.DELIVERED for d in deliveries(connection))
    assert any(d.attempts > 1 for d in deliveries(connection))
    assert receiver.duplicates >= 3  # resends happened, and the consumer kept each event once
    assert sorted(receiver.order) == sorted(event_ids(world.merchant)) and len(set(receiver.order)) == len(
        receiver.order)
    assert receiver.out_of_order == []
    for card in (world.card, other_card):
        customer_id = card.wallet.customer_id
        assert receiver.events_of(customer_id) == event_ids(world.merchant, customer_id=customer_id)
        card.refresh_from_db()
        assert receiver.profiles[customer_id]["card"]["balance"] == card.balance > 0


@pytest.mark.parametrize("retry_after_seconds", [120, "http-date"])
def test_rate_limited_batch_is_not_tried_again_before_retry_after(world, receiver, connect, retry_after_seconds):
    buy(world.card, 1000)
    connection = connect()
    started = timezone.now()
    if retry_after_seconds == "http-date":
        not_before = (started + dt.timedelta(seconds=90)).replace(microsecond=0)
        receiver.fail(429, retry_after=email.utils.format_datetime(not_before, usegmt=True))
        not_before -= dt.timedelta(seconds=1)  # an HTTP-date has whole seconds
    else:
        not_before = started + dt.timedelta(seconds=retry_after_seconds)
        receiver.fail(429, retry_after=str(retry_after_seconds))

    report = ship(connection, started)

    assert report.retrying == report.sent > 0
    assert all(d.next_attempt_at >= not_before and "429" in d.last_error for d in deliveries(connection))
    assert deliver_batch(connection.pk, now=not_before - dt.timedelta(seconds=1)).sent == 0
    assert len(receiver.requests) == 1
    drive(connection, start=not_before)
    assert len(receiver.events) == report.sent


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_and_request_timeouts_are_retried(world, receiver, connect, status):
    buy(world.card, 1000)
    connection = connect()
    receiver.fail(status)

    report = ship(connection)

    assert report.retrying == report.sent > 0 and report.dead == 0
    assert all(d.status == Status.PENDING and f"answered {status}" in d.last_error for d in deliveries(connection))
    drive(connection)
    assert len(receiver.events) == report.sent


def test_a_receiver_slower_than_the_timeout_is_retried_and_its_duplicates_are_harmless(
        world, receiver, connect, monkeypatch):
    monkeypatch.setattr(WebhookCrmConnector, "timeout", httpx.Timeout(0.3))
    buy(world.card, 1000)
    connection = connect()
    receiver.hang(1.5)  # it applies the events, but answers after we stopped waiting

    report = ship(connection)

    assert report.retrying == report.sent > 0
    assert all("did not answer in time" in d.last_error for d in deliveries(connection))
    drive(connection)
    first, resend = receiver.requests
    assert first.webhook_id == resend.webhook_id and first.body == resend.body  # the same batch, sent again
    assert all(d.status == Status.DELIVERED for d in deliveries(connection))
    assert len(receiver.events) == report.sent and receiver.duplicates == report.sent


def test_a_refused_connection_is_retried(world, connect):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    buy(world.card, 1000)
    connection = connect(url=f"http://127.0.0.1:{port}/hooks/tessera")

    report = ship(connection)

    assert report.retrying == report.sent > 0
    assert all("Could not reach 127.0.0.1: ConnectError" in d.last_error for d in deliveries(connection))


def test_a_receiver_that_stays_down_dead_letters_and_replay_delivers_once(world, receiver, connect):
    buy(world.card, 1000)
    buy(world.card, 2000)
    connection = connect(max_attempts=3)
    receiver.fail(503, times=1000)

    later = drive(connection)

    dead = deliveries(connection)
    assert dead and all(d.status == Status.DEAD and d.attempts == 3 and "answered 503" in d.last_error
                        for d in dead)
    assert receiver.events == {} and {r.status for r in receiver.requests} == {503}

    receiver.heal()
    assert retry_dead_letters(connection.pk, now=later) == len(dead)
    drive(connection, start=later)

    assert all(d.status == Status.DELIVERED for d in deliveries(connection))
    assert sorted(receiver.order) == sorted(event_ids(world.merchant)) and receiver.duplicates == 0


def test_a_receiver_refusing_our_signature_dead_letters_at_once_with_a_clear_error(world, receiver, connect):
    buy(world.card, 1000)
    connection = connect(signing_secret=OTHER_SECRET)

    report = ship(connection)

    assert report.dead == report.sent > 0
    for delivery in deliveries(connection):
        assert delivery.status == Status.DEAD and delivery.attempts == 1
        assert "answered 401" in delivery.last_error and "No v1 signature matches" in delivery.last_error
        assert "signing secret" in delivery.last_error
    assert receiver.events == {}


@pytest.mark.parametrize(("status", "headers", "explained"), [
    (410, {}, "endpoint no longer exists"),
    (422, {}, "scripted failure"),
    (301, {"Location": "https://new.example/hook"}, "does not follow redirects"),
])
def test_permanent_refusals_are_dead_lettered(world, receiver, connect, status, headers, explained):
    buy(world.card, 1000)
    connection = connect()
    receiver.fail(status, headers=headers)

    report = ship(connection)

    assert report.dead == report.sent > 0
    assert all(d.status == Status.DEAD and f"answered {status}" in d.last_error and explained in d.last_error
               for d in deliveries(connection))


# --- settings --------------------------------------------------------------------------------------


def refusal(world, values) -> dict:
    with pytest.raises(ValidationFailed) as refused:
        create_connection(world.merchant, "webhook", "Orders system", values)
    return refused.value.fields


def test_missing_signing_secret_is_refused_naming_the_field(world):
    assert refusal(world, {"url": "https://crm.example.com/hooks"}) == {"signing_secret": ["This field is required."]}


@pytest.mark.parametrize(("url", "explained"), [
    ("http://crm.example.com/hooks", "Use https"),
    ("crm.example.com/hooks", "absolute URL"),
    ("https://user:pass@crm.example.com/hooks", "credentials"),
])
def test_endpoint_must_be_https_except_on_localhost(world, url, explained):
    assert explained in refusal(world, {"url": url, "signing_secret": SECRET})["url"][0]


@pytest.mark.parametrize("url", ["https://crm.example.com/hooks", "http://localhost:8000/hooks"])
def test_https_and_local_http_endpoints_are_accepted(world, url):
    create_connection(world.merchant, "webhook", "Orders system", {"url": url, "signing_secret": SECRET})


@pytest.mark.parametrize(("name", "secret", "explained"), [
    ("signing_secret", "hunter2", "whsec_"),
    ("signing_secret", "whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ("previous_signing_secret", "whsec_%%%", "base64"),
])
def test_signing_secrets_must_be_whsec_keys(world, name, secret, explained):
    values = {"url": "https://crm.example.com/hooks", "signing_secret": SECRET, name: secret}
    assert explained in refusal(world, values)[name][0]


@pytest.mark.parametrize("size", ["0", 101, "ten", "-5", 2.5, True])
def test_batch_size_must_be_a_whole_number_from_1_to_100(world, size):
    values = {"url": "https://crm.example.com/hooks", "signing_secret": SECRET, "batch_size": size}
    assert refusal(world, values) == {"batch_size": ["A whole number from 1 to 100."]}


def test_the_largest_batch_size_is_used_as_configured(world):
    connection = create_connection(world.merchant, "webhook", "Orders system", {
        "url": "https://crm.example.com/hooks", "signing_secret": SECRET, "batch_size": "100"})
    assert connector_for(connection).batch_size == 100


# --- the README is the consumer's contract ----------------------------------------------------------


def readme_snippet() -> str:
    match = re.search(r"```python\n(# verify_tessera_webhook.*?)```", README.read_text(), re.S)
    assert match, "README.md lost its verification snippet"
    return match.group(1)


def test_readme_verification_snippet_accepts_our_request_and_rejects_a_forgery(world, receiver, connect):
    buy(world.card, 1000)
    ship(connect())
    [request] = receiver.requests
    namespace = {}
    exec(readme_snippet(), namespace)  # noqa: S102 - our own documentation, run to prove it right
    verify = namespace["verify_tessera_webhook"]

    assert verify(SECRET, request.headers, request.body) == request.webhook_id
    with pytest.raises(ValueError):
        verify(SECRET, request.headers, request.body.replace(b'"balance":10', b'"balance":99'))
    with pytest.raises(ValueError):
        verify(OTHER_SECRET, request.headers, request.body)


def test_readme_documents_every_event_type_the_core_emits():
    root = Path(__file__).resolve().parents[2]
    emit = re.compile(r'emit_(?:card_)?event\(\s*(?:\w+,\s*)?"(wallet\.[a-z_.]+)"')
    emitted = {name for path in (root / "wallet").rglob("*.py") for name in emit.findall(path.read_text())}
    documented = set(re.findall(r"`(wallet\.[a-z_.]+)`", README.read_text()))
    assert len(emitted) >= 15 and emitted - documented == set()
