"""HubSpot: outbox events reach a fake HubSpot (hubspot_fake.py, a real socket server checking requests
as HubSpot documents them) through the real delivery engine; consent comes back through the real
webhook URL, signed with X-HubSpot-Signature-v3."""
import base64
import datetime as dt
import hashlib
import hmac
import json
import time

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from core.errors import ValidationFailed
from crm_sync import registry
from crm_sync.connections import create_connection, update_connection
from crm_sync.connectors.hubspot import mapping
from crm_sync.connectors.hubspot.connector import HubSpotConnector
from crm_sync.delivery import deliver_batch, retry_dead_letters
from crm_sync.fanout import fan_out
from crm_sync.inbound import MAX_BODY_BYTES as INBOUND_MAX_BODY_BYTES
from crm_sync.models import CrmDelivery
from crm_sync.types import CardSnapshot, CustomerProfile, OutboundEvent
from tests.crm.hubspot_fake import UPSERT_PATH, FakeHubSpot
from tests.factories import make_card, make_customer
from tests.wallet.helpers import buy
from wallet.models import DomainEvent
from wallet.services.preferences import channel_consents, set_channel_consent
from wallet.services.privacy import erase_customer

pytestmark = pytest.mark.django_db

CONNECTOR = "crm_sync.connectors.hubspot.connector.HubSpotConnector"
PUBLIC_URL = "https://tessera.example"
TOKEN = "pat-eu1-0f4e7a2c-5b1d-4c3e-9a8f-2d6b1e0c7f3a"
CLIENT_SECRET = "c1f2e3d4-0000-4abc-8def-123456789abc"
HUB_ID = "24681357"
Status = CrmDelivery.Status


@pytest.fixture(autouse=True)
def hubspot_installed(settings):
    settings.TESSERA_CRM_CONNECTORS = [CONNECTOR]
    settings.TESSERA_PUBLIC_URL = PUBLIC_URL
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def fake():
    server = FakeHubSpot(access_token=TOKEN, hub_id=HUB_ID).start()
    yield server
    server.stop()


def connect(world, fake, *, max_attempts=8, **values):
    settings = {"access_token": TOKEN, "client_secret": CLIENT_SECRET, "hub_id": HUB_ID, "api_base_url": fake.url}
    return create_connection(world.merchant, "hubspot", "HubSpot", {**settings, **values}, max_attempts=max_attempts)


def deliveries(connection):
    return CrmDelivery.objects.filter(connection=connection).order_by("event_id")


def deliver(connection, now=None):
    now = now or timezone.now()
    fan_out(connection.pk, now=now)
    return deliver_batch(connection.pk, now=now)


def next_due(connection) -> dt.datetime:
    return max(d.next_attempt_at for d in deliveries(connection).filter(status=Status.PENDING))


def deliver_until_settled(connection, *, rounds=20):
    """Drive the engine as the sweep would, jumping the clock to each retry instead of sleeping."""
    now = timezone.now()
    for _ in range(rounds):
        deliver(connection, now)
        if not deliveries(connection).filter(status=Status.PENDING).exists():
            return
        now = max(now, next_due(connection)) + dt.timedelta(seconds=1)
    raise AssertionError("deliveries never settled")


def purchase_event_ids(card) -> list[int]:
    return list(DomainEvent.objects.filter(card_id=card.pk, event_type="wallet.purchase.recorded")
                .order_by("id").values_list("id", flat=True))


def occurrence_event_ids(fake, email) -> list[int]:
    return [int(o["properties"]["tessera_event_id"]) for o in fake.occurrences if o["email"] == email]


# Outbound: what HubSpot receives ------------------------------------------------------------------

def test_purchase_upserts_the_contact_by_email_and_sends_a_custom_event(world, fake):
    connection = connect(world, fake)
    buy(world.card, 1250)
    world.card.refresh_from_db()

    report = deliver(connection)

    assert report.delivered == report.sent == deliveries(connection).count() > 0
    upsert = fake.calls(UPSERT_PATH)[0]
    assert upsert.headers["authorization"] == f"Bearer {TOKEN}"
    assert upsert.inputs == [{"id": world.customer.user.email, "idProperty": "email", "properties": {
        "tessera_email_opt_in": "false", "tessera_card_number": world.card.number,
        "tessera_points": str(world.card.balance), "tessera_lifetime_points": str(world.card.lifetime_points),
        "tessera_tier": "Silver",
    }}]
    assert fake.contact(world.customer.user.email)["tessera_points"] == "12"
    [occurrence] = fake.occurrences
    assert occurrence["eventName"] == f"pe{HUB_ID}_tessera_purchase"
    assert occurrence["email"] == world.customer.user.email
    assert occurrence["properties"]["amount"] == "12.50"
    assert occurrence["properties"]["currency"] == "EUR"
    assert occurrence["properties"]["points_earned"] == "12"
    assert occurrence["uuid"] == mapping.occurrence_uuid(world.merchant.pk, purchase_event_ids(world.card)[0])


def test_resending_a_batch_that_already_reached_hubspot_doubles_nothing(world, fake):
    connection = connect(world, fake)
    buy(world.card, 1000)
    buy(world.card, 500)
    deliver(connection)
    # A worker killed after HubSpot answered but before it recorded the result sends the batch again.
    deliveries(connection).update(status=Status.PENDING, next_attempt_at=timezone.now())

    deliver(connection)

    assert len(fake.contacts) == 1
    assert occurrence_event_ids(fake, world.customer.user.email) == purchase_event_ids(world.card)
    assert fake.duplicate_occurrences == 2
    assert not deliveries(connection).exclude(status=Status.DELIVERED).exists()


def test_a_backlog_goes_out_in_hubspot_batches_of_at_most_100(world, fake):
    connection = connect(world, fake)
    for _ in range(130):
        buy(world.card, 100)

    deliver_until_settled(connection)

    events = deliveries(connection).count()
    assert events > 260  # each purchase also changes points; the first may change the tier
    assert len(fake.calls(UPSERT_PATH)) == -(-events // 100)  # one contact upsert per batch of 100 events
    assert all(len(r.inputs) <= 100 and r.status in (200, 204) for r in fake.requests)
    assert occurrence_event_ids(fake, world.customer.user.email) == purchase_event_ids(world.card)
    world.card.refresh_from_db()
    assert fake.contact(world.customer.user.email)["tessera_points"] == str(world.card.balance) == "130"


def test_more_contacts_than_hubspot_takes_at_once_are_split_into_requests_of_100(fake):
    events = [OutboundEvent(event_id=n, event_type="wallet.points.changed", schema_version=1,
                            occurred_at=timezone.now(), merchant_id=1, payload={},
                            customer=CustomerProfile(customer_id=n, email=f"member{n}@example.com"),
                            card=CardSnapshot(card_id=n, number=f"9{n:07d}", program="P", balance=n,
                                              lifetime_points=n, tier=None, status="active"))
              for n in range(1, 251)]
    connector = HubSpotConnector(config={"api_base_url": fake.url}, secrets={"access_token": TOKEN})

    results = connector.push(events)

    assert [len(r.inputs) for r in fake.calls(UPSERT_PATH)] == [100, 100, 50]
    assert all(r.ok for r in results) and len(fake.contacts) == 250
    assert fake.contact("member250@example.com")["tessera_points"] == "250"


def test_consent_and_names_travel_with_the_contact(world, fake):
    user = world.customer.user
    get_user_model().objects.filter(pk=user.pk).update(first_name="Priya", last_name="Okafor")
    connection = connect(world, fake)
    set_channel_consent(world.customer, world.merchant, {"email": True})

    deliver(connection)

    contact = fake.contact(user.email)
    assert (contact["firstname"], contact["lastname"], contact["tessera_email_opt_in"]) == ("Priya", "Okafor", "true")


def test_customers_without_email_or_erased_send_nothing_personal(world, fake):
    connection = connect(world, fake)
    phone_only = make_customer()
    get_user_model().objects.filter(pk=phone_only.user_id).update(email="")
    buy(make_card(world.program, phone_only), 300)
    buy(world.card, 200)
    erase_customer(world.customer)

    deliver(connection)

    assert not deliveries(connection).exclude(status=Status.DELIVERED).exists()
    assert fake.requests == [] and fake.contacts == {}


def test_field_mapping_renames_properties_and_drops_blank_ones(world, fake):
    fake.known_properties |= {"loyalty_points"}
    connection = connect(world, fake)
    connection.field_mapping = {"points": "loyalty_points", "tier": "", "purchase_event": ""}
    connection.save(update_fields=["field_mapping"])
    buy(world.card, 700)

    deliver(connection)

    contact = fake.contact(world.customer.user.email)
    assert contact["loyalty_points"] == "7" and "tessera_tier" not in contact and "tessera_points" not in contact
    assert fake.occurrences == []


# Outbound: when HubSpot misbehaves ------------------------------------------------------------------

def test_hubspot_failing_with_500_then_recovering_gets_every_event_once_and_in_order(world, fake):
    other = make_customer()
    other_card = make_card(world.program, other)
    connection = connect(world, fake)
    for amount in (1000, 2000, 3000):
        buy(world.card, amount)
        buy(other_card, amount // 2)
    fake.fail(500, times=3)

    deliver_until_settled(connection)

    for customer, card in ((world.customer, world.card), (other, other_card)):
        card.refresh_from_db()
        assert fake.contact(customer.user.email)["tessera_points"] == str(card.balance)
        assert occurrence_event_ids(fake, customer.user.email) == purchase_event_ids(card)
    assert len({o["uuid"] for o in fake.occurrences}) == len(fake.occurrences) == 6
    assert deliveries(connection).filter(attempts__gt=1).exists()


@pytest.mark.parametrize(("retry_after", "policy", "at_least"), [
    ("7", "", 7), (None, "TEN_SECONDLY_ROLLING", 10), (None, "DAILY", 3600), ("http-date", "", 29),
])
def test_rate_limited_batch_is_not_tried_again_before_hubspot_allows(world, fake, retry_after, policy, at_least):
    connection = connect(world, fake)
    buy(world.card, 1000)
    now = timezone.now()
    if retry_after == "http-date":
        retry_after = (now + dt.timedelta(seconds=31)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    fake.fail(429, retry_after=retry_after, policy=policy)

    deliver(connection, now)

    pending = deliveries(connection)
    assert all(d.status == Status.PENDING and d.next_attempt_at >= now + dt.timedelta(seconds=at_least)
               for d in pending)
    calls = len(fake.requests)
    assert deliver(connection, now + dt.timedelta(seconds=at_least - 1)).sent == 0
    assert len(fake.requests) == calls
    assert deliver(connection, next_due(connection)).delivered == pending.count()


def test_hubspot_down_for_good_dead_letters_then_retry_delivers_each_event_once(world, fake):
    connection = connect(world, fake, max_attempts=3)
    buy(world.card, 1000)
    buy(world.card, 2500)
    fake.down = True
    now = timezone.now()
    for _ in range(3):
        deliver(connection, now)
        if deliveries(connection).filter(status=Status.PENDING).exists():
            now = next_due(connection) + dt.timedelta(seconds=1)

    assert {(d.status, d.attempts) for d in deliveries(connection)} == {(Status.DEAD, 3)}
    assert "answered 500" in deliveries(connection).first().last_error

    fake.down = False
    retry_dead_letters(connection.pk, now=now)
    deliver(connection, now)

    assert not deliveries(connection).exclude(status=Status.DELIVERED).exists()
    world.card.refresh_from_db()
    assert fake.contact(world.customer.user.email)["tessera_points"] == str(world.card.balance)
    assert occurrence_event_ids(fake, world.customer.user.email) == purchase_event_ids(world.card)


def test_a_refused_access_token_dead_letters_the_batch_with_a_clear_error(world, fake):
    connection = connect(world, fake, access_token="pat-eu1-revoked")
    buy(world.card, 1000)

    report = deliver(connection)

    assert report.dead == report.sent > 0
    error = deliveries(connection).first().last_error
    assert "401" in error and "INVALID_AUTHENTICATION" in error and "access token" in error
    assert fake.contacts == {}


def test_a_timeout_is_retried_not_dead_lettered(world, fake, monkeypatch):
    monkeypatch.setattr(HubSpotConnector, "timeout", httpx.Timeout(0.3))
    connection = connect(world, fake)
    buy(world.card, 1000)
    fake.stall(1.0)

    deliver(connection)

    assert {(d.status, d.attempts) for d in deliveries(connection)} == {(Status.PENDING, 1)}
    assert "did not answer in time" in deliveries(connection).first().last_error
    time.sleep(0.8)  # let the stalled request end before the retry
    assert deliver(connection, next_due(connection)).delivered == deliveries(connection).count()
    assert fake.contact(world.customer.user.email)["tessera_points"] == "10"


@pytest.mark.parametrize("partial", [False, True], ids=["whole-batch-400", "partial-207"])
def test_one_invalid_email_does_not_block_the_other_contacts(world, fake, partial):
    fake.partial = partial
    connection = connect(world, fake)
    members = [make_customer() for _ in range(5)]
    broken = members[2]
    get_user_model().objects.filter(pk=broken.user_id).update(email="not-an-email")
    for member in members:
        buy(make_card(world.program, member), 1000)

    deliver(connection)

    dead = deliveries(connection).filter(status=Status.DEAD)
    assert set(dead.values_list("customer_id", flat=True)) == {broken.pk}
    assert "not-an-email" in dead.first().last_error
    assert not deliveries(connection).filter(status=Status.PENDING).exists()
    assert set(fake.contacts) == {m.user.email for m in members if m != broken} | {world.customer.user.email}
    assert {o["email"] for o in fake.occurrences} == {m.user.email for m in members if m != broken}
    assert len(fake.requests) <= 12


def test_a_missing_contact_property_in_hubspot_is_reported_by_name(world, fake):
    fake.known_properties -= {"tessera_tier"}
    connection = connect(world, fake, max_attempts=1)
    buy(world.card, 1000)

    deliver(connection)

    assert 'Property "tessera_tier" does not exist' in deliveries(connection).first().last_error


# Configuration ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "field"), [
    ({"access_token": ""}, "access_token"),
    ({"api_base_url": "http://api.hubapi.com"}, "api_base_url"),
    ({"hub_id": "pe24681357"}, "hub_id"),
    ({"inbound_url": "hooks/crm"}, "inbound_url"),
    ({"portal": "1"}, "portal"),
])
def test_invalid_settings_are_refused_naming_the_field(world, fake, values, field):
    with pytest.raises(ValidationFailed) as refused:
        connect(world, fake, **values)
    assert field in refused.value.fields


def test_client_secret_is_optional_and_stored_sealed(world, fake):
    connection = connect(world, fake, client_secret="")
    assert TOKEN not in connection.secrets_encrypted and "access_token" not in connection.config


# Inbound: consent from HubSpot ---------------------------------------------------------------------

def hook_url(connection) -> str:
    return f"{PUBLIC_URL}/hooks/crm/{connection.pk}/"


def property_change(object_id, name="hs_email_optout", value="true", **extra) -> dict:
    return {"eventId": 100 + int(object_id), "subscriptionId": 12345, "portalId": int(HUB_ID), "appId": 54321,
            "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0, "objectId": int(object_id), "changeSource": "CRM_UI", "propertyName": name,
            "propertyValue": value, **extra}


def v3_headers(body: bytes, url: str, *, secret=CLIENT_SECRET, timestamp=None) -> dict:
    timestamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
    source = b"POST" + url.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}


def hex_v3_headers(body: bytes, url: str) -> dict:
    """The right v3 HMAC (right secret, URL, body, fresh timestamp), spelled in hex instead of base64."""
    headers = v3_headers(body, url)
    digest = base64.b64decode(headers["X-HubSpot-Signature-v3"])
    return {**headers, "X-HubSpot-Signature-v3": digest.hex()}


def post_hook(client, connection, events, *, path_suffix="", **signing):
    body = json.dumps(events).encode()
    headers = signing.pop("headers", None) or v3_headers(body, signing.pop("url", hook_url(connection)), **signing)
    return client.post(f"/hooks/crm/{connection.pk}/{path_suffix}", data=body, content_type="application/json",
                       headers=headers)


def test_opt_out_in_hubspot_turns_email_consent_off(client, world, fake):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)

    response = post_hook(client, connection, [property_change(contact_id)])

    assert response.status_code == 200 and response.json() == {"received": 1, "applied": 1}
    assert channel_consents(world.customer, world.merchant)["email"] is False
    [lookup] = fake.requests
    assert lookup.path == f"/crm/v3/objects/contacts/{contact_id}" and lookup.query == {"properties": ["email"]}
    assert lookup.headers["authorization"] == f"Bearer {TOKEN}"


def test_opt_in_property_set_in_hubspot_turns_email_consent_on(client, world, fake):
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    events = [property_change(contact_id, "tessera_email_opt_in", "false", occurredAt=1),
              property_change(contact_id, "tessera_email_opt_in", "true", occurredAt=2),
              property_change(contact_id, "firstname", "Priya")]

    response = post_hook(client, connection, events)

    assert response.json() == {"received": 1, "applied": 1}
    assert channel_consents(world.customer, world.merchant)["email"] is True


def test_the_end_of_an_opt_out_is_not_taken_as_an_opt_in(client, world, fake):
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)

    response = post_hook(client, connection, [property_change(contact_id, "hs_email_optout", "false")])

    assert response.json() == {"received": 0, "applied": 0}
    assert channel_consents(world.customer, world.merchant)["email"] is False
    assert fake.requests == []


def test_hubspot_down_during_the_contact_lookup_answers_an_error_so_hubspot_retries(world, fake):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    fake.down = True

    response = post_hook(Client(raise_request_exception=False), connection, [property_change(contact_id)])

    assert response.status_code >= 500
    assert channel_consents(world.customer, world.merchant)["email"] is True


def test_a_contact_unknown_to_hubspot_or_to_us_changes_nothing(client, world, fake):
    stranger = fake.add_contact("stranger@example.org")
    connection = connect(world, fake)

    response = post_hook(client, connection, [property_change(stranger), property_change(999999)])

    assert response.json() == {"received": 1, "applied": 0}


def test_signature_covers_the_registered_url_with_its_query_string(client, world, fake):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    registered = f"{hook_url(connection)}?portal={HUB_ID}"
    update_connection(connection, {"hub_id": HUB_ID, "api_base_url": fake.url, "inbound_url": registered})

    without_query = post_hook(client, connection, [property_change(contact_id)], path_suffix=f"?portal={HUB_ID}")
    assert without_query.status_code == 401
    assert channel_consents(world.customer, world.merchant)["email"] is True

    signed = post_hook(client, connection, [property_change(contact_id)], path_suffix=f"?portal={HUB_ID}",
                       url=registered)
    assert signed.status_code == 200
    assert channel_consents(world.customer, world.merchant)["email"] is False


V1_BODY = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":'
           b'"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]')


@pytest.mark.parametrize("case", ["wrong-secret", "six-minutes-old", "seconds-timestamp", "v1-only", "tampered",
                                  "no-headers", "hex-instead-of-base64"])
def test_an_unverified_webhook_gets_401_and_changes_nothing(client, world, fake, case):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    events = [property_change(contact_id)]
    body = json.dumps(events).encode()
    now_ms = int(time.time() * 1000)
    headers = {
        "wrong-secret": lambda: v3_headers(body, hook_url(connection), secret="not-the-secret"),
        "six-minutes-old": lambda: v3_headers(body, hook_url(connection), timestamp=now_ms - 6 * 60 * 1000),
        "seconds-timestamp": lambda: v3_headers(body, hook_url(connection), timestamp=now_ms // 1000),
        "v1-only": lambda: {"X-HubSpot-Signature": hashlib.sha256(CLIENT_SECRET.encode() + body).hexdigest(),
                            "X-HubSpot-Signature-Version": "v1"},
        "tampered": lambda: v3_headers(json.dumps([property_change(contact_id, value="false")]).encode(),
                                       hook_url(connection)),
        "no-headers": lambda: {"X-Other": "1"},
        "hex-instead-of-base64": lambda: hex_v3_headers(body, hook_url(connection)),
    }[case]()

    response = post_hook(client, connection, events, headers=headers)

    assert response.status_code == 401
    assert channel_consents(world.customer, world.merchant)["email"] is True
    assert fake.requests == []


def test_a_four_minute_old_webhook_is_still_accepted(client, world, fake):
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    events = [property_change(contact_id, "tessera_email_opt_in", "true")]
    four_minutes_ago = int(time.time() * 1000) - 4 * 60 * 1000

    response = post_hook(client, connection, events, timestamp=four_minutes_ago)

    assert response.status_code == 200
    assert channel_consents(world.customer, world.merchant)["email"] is True


def test_the_published_v1_vector_is_rejected_even_though_it_is_valid_v1(client, world, fake):
    connection = connect(world, fake, client_secret="yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")
    v1 = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert hashlib.sha256(b"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy" + V1_BODY).hexdigest() == v1

    response = client.post(f"/hooks/crm/{connection.pk}/", data=V1_BODY, content_type="application/json",
                           headers={"X-HubSpot-Signature": v1, "X-HubSpot-Signature-Version": "v1"})

    assert response.status_code == 401


@pytest.mark.parametrize("size", [
    pytest.param(INBOUND_MAX_BODY_BYTES + 1, id="one-byte-over-1MB"),
    pytest.param(3 * 1024 * 1024, id="3MB-beyond-djangos-own-upload-limit"),
])
def test_an_oversize_webhook_is_refused_with_413_before_any_signature_work(client, world, fake, monkeypatch,
                                                                           size):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    verified = []
    monkeypatch.setattr(HubSpotConnector, "verify_inbound", lambda self, request: verified.append(request))
    change = property_change(contact_id)
    change["padding"] = ""
    change["padding"] = "x" * (size - len(json.dumps([change])))
    body = json.dumps([change]).encode()
    assert len(body) == size

    response = client.post(f"/hooks/crm/{connection.pk}/", data=body, content_type="application/json",
                           headers=v3_headers(body, hook_url(connection)))  # signed: only the size is wrong

    assert response.status_code == 413, response.content[:300]
    assert response.json() == {"error": {"code": "payload_too_large", "message": "The body is too large.",
                                         "fields": {}}}
    assert verified == []
    assert channel_consents(world.customer, world.merchant)["email"] is True
    assert fake.requests == []


def test_a_webhook_of_exactly_1MB_is_taken_to_the_signature_check(client, world, fake):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    contact_id = fake.add_contact(world.customer.user.email)
    connection = connect(world, fake)
    change = property_change(contact_id)
    change["padding"] = ""
    change["padding"] = "x" * (INBOUND_MAX_BODY_BYTES - len(json.dumps([change])))
    body = json.dumps([change]).encode()
    assert len(body) == INBOUND_MAX_BODY_BYTES

    response = client.post(f"/hooks/crm/{connection.pk}/", data=body, content_type="application/json",
                           headers=v3_headers(body, hook_url(connection)))

    assert response.status_code == 200 and response.json() == {"received": 1, "applied": 1}
    assert channel_consents(world.customer, world.merchant)["email"] is False


def test_webhooks_are_refused_when_no_client_secret_is_set(client, world, fake):
    connection = connect(world, fake, client_secret="")
    contact_id = fake.add_contact(world.customer.user.email)

    assert post_hook(client, connection, [property_change(contact_id)], secret="").status_code == 401


def test_isolating_bad_records_stops_within_budget_and_leaves_the_rest_retryable(fake):
    events = [OutboundEvent(event_id=n, event_type="wallet.points.changed", schema_version=1,
                            occurred_at=timezone.now(), merchant_id=1, payload={},
                            customer=CustomerProfile(customer_id=n, email=f"broken-{n}"))
              for n in range(1, 101)]
    connector = HubSpotConnector(config={"api_base_url": fake.url}, secrets={"access_token": TOKEN})

    results = connector.push(events)

    assert not any(r.ok for r in results)
    isolated = [r for r in results if not r.retryable]
    assert isolated and all("INVALID_EMAIL" in r.error for r in isolated)
    assert any(r.retryable and "Not isolated yet" in r.error for r in results)
    assert len(fake.requests) <= 1 + 24  # the first request plus the splitting budget
