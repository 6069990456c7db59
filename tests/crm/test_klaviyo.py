"""Klaviyo: outbox events become Klaviyo profiles, events and consent, driven through the real delivery
engine (fan_out, deliver_batch, retry_dead_letters) against a local fake Klaviyo (klaviyo_fake.py) that
checks each request as Klaviyo documents it and keeps Klaviyo's state."""
import datetime as dt
from collections import Counter

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.errors import ValidationFailed
from crm_sync import registry
from crm_sync.connections import create_connection
from crm_sync.connectors.klaviyo.client import REVISION
from crm_sync.connectors.klaviyo.connector import BATCH_SIZE
from crm_sync.delivery import deliver_batch, retry_dead_letters
from crm_sync.fanout import fan_out
from crm_sync.models import CrmDelivery
from tests.crm.klaviyo_fake import JSON_API, FakeKlaviyo
from tests.factories import make_card, make_customer
from tests.wallet.helpers import buy
from wallet.models import DomainEvent
from wallet.services.preferences import set_channel_consent
from wallet.services.privacy import erase_customer

pytestmark = pytest.mark.django_db

API_KEY = "pk_live_4f1c2a9b7e0d5c3a"
LIST_ID = "Xy7Pq2"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "/api/profile-subscription-bulk-delete-jobs"


@pytest.fixture(autouse=True)
def klaviyo_installed(settings):
    settings.TESSERA_CRM_CONNECTORS = ["crm_sync.connectors.klaviyo.connector.KlaviyoConnector"]
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def fake():
    server = FakeKlaviyo(api_key=API_KEY).start()
    yield server
    server.stop()


class ShortTimeouts(httpx.HTTPTransport):
    """Gives up on an answer after 0.3 s, so a test can make Klaviyo time out without waiting 10 s."""

    def handle_request(self, request):
        request.extensions["timeout"] = {"connect": 1.0, "read": 0.3, "write": 1.0, "pool": 1.0}
        return super().handle_request(request)


def connect(world, fake, *, max_attempts=8, field_mapping=None, **values):
    settings = {"api_key": API_KEY, "api_base_url": fake.url, "list_id": LIST_ID, **values}
    return create_connection(world.merchant, "klaviyo", "Klaviyo", {k: v for k, v in settings.items() if v is not None},
                             field_mapping=field_mapping, max_attempts=max_attempts)


def ship(connection, now, *, transport=None) -> list:
    """Fan out, then send every batch due at `now` (as the drain task does, with our clock)."""
    fan_out(connection.pk, now=now)
    reports = []
    while (report := deliver_batch(connection.pk, now=now, transport=transport)).sent:
        reports.append(report)
    return reports


def statuses(connection) -> Counter:
    return Counter(CrmDelivery.objects.filter(connection=connection).values_list("status", flat=True))


def deliveries(connection) -> list[CrmDelivery]:
    return list(CrmDelivery.objects.filter(connection=connection).select_related("event").order_by("event_id"))


def metric_event_ids(merchant, customer=None) -> list[str]:
    """Outbox ids of the events that become Klaviyo events (everything but consent and erasure)."""
    events = DomainEvent.objects.filter(merchant=merchant).exclude(
        event_type__in=["wallet.consent.changed", "wallet.customer.erased"])
    if customer is not None:
        events = events.filter(customer_id=customer.pk)
    return [str(pk) for pk in events.order_by("pk").values_list("pk", flat=True)]


def profile_of(fake, customer) -> dict:
    profile = fake.profile(email=customer.user.email)
    assert profile is not None, f"Klaviyo has no profile for {customer.user.email}"
    return profile


# -- what is sent ---------------------------------------------------------------------------------------


def test_purchase_sets_points_tier_and_card_on_the_profile_and_records_a_purchase_event(world, fake):
    connection = connect(world, fake)
    buy(world.card, 1250)
    ship(connection, timezone.now())

    world.card.refresh_from_db()
    profile = profile_of(fake, world.customer)
    assert profile["properties"]["loyalty_points"] == world.card.balance == 12
    assert profile["properties"]["loyalty_tier"] == "Silver"
    assert profile["properties"]["loyalty_card_number"] == world.card.number
    assert profile["properties"]["tessera_customer_id"] == world.customer.pk
    purchase_event = DomainEvent.objects.get(event_type="wallet.purchase.recorded")
    [purchase] = [e for e in fake.events_of(profile) if e["metric"] == "Tessera Purchase"]
    assert purchase["unique_id"] == str(purchase_event.pk)
    assert (purchase["value"], purchase["value_currency"]) == (12.5, "EUR")
    assert purchase["properties"]["points_earned"] == 12
    assert dt.datetime.fromisoformat(purchase["time"]) == purchase_event.occurred_at.replace(microsecond=0)
    assert {e["metric"] for e in fake.events_of(profile)} == {
        "Tessera Card Enrolled", "Tessera Points Changed", "Tessera Purchase"}
    assert statuses(connection) == {"delivered": 3}


def test_every_request_carries_the_private_key_the_pinned_revision_and_json_api_types(world, fake):
    connection = connect(world, fake)
    buy(world.card, 500)
    ship(connection, timezone.now())

    assert fake.requests and {r["path"] for r in fake.requests} == {"/api/profile-import", "/api/events"}
    for request in fake.requests:
        assert request["headers"]["authorization"] == f"Klaviyo-API-Key {API_KEY}"
        assert request["headers"]["revision"] == REVISION == "2026-07-15"
        assert request["headers"]["content-type"] == request["headers"]["accept"] == JSON_API
    [profile_call] = fake.calls("/api/profile-import")  # one upsert per customer per batch, before the events
    assert fake.requests[0] is profile_call
    assert profile_call["body"]["data"]["attributes"]["email"] == world.customer.user.email
    for call in fake.calls("/api/events"):
        event = call["body"]["data"]["attributes"]
        assert event["profile"]["data"]["attributes"] == {"email": world.customer.user.email}
        assert event["metric"]["data"] == {"type": "metric", "attributes": {"name": event["metric"]["data"][
            "attributes"]["name"]}}


def test_batches_stay_within_batch_size_and_every_event_arrives_once_in_outbox_order(world, fake):
    connection = connect(world, fake)
    others = [make_card(world.program, make_customer()) for _ in range(2)]
    for round_ in range(10):
        for card in [world.card, *others]:
            buy(card, 100 + round_)

    reports = ship(connection, timezone.now())

    assert len(reports) > 1 and all(report.sent <= BATCH_SIZE for report in reports)
    assert statuses(connection) == {"delivered": DomainEvent.objects.filter(merchant=world.merchant).count()}
    for card in [world.card, *others]:
        customer = card.wallet.customer
        recorded = [e["unique_id"] for e in fake.events_of(profile_of(fake, customer))]
        assert recorded == metric_event_ids(world.merchant, customer)  # once each, in outbox order
    # One Klaviyo call per event, each naming one profile: no request can exceed a Klaviyo limit.
    assert len(fake.calls("/api/events")) == len(metric_event_ids(world.merchant))


def test_field_mapping_renames_or_drops_profile_properties(world, fake):
    connection = connect(world, fake, field_mapping={"points": "points_balance", "card_number": ""})
    buy(world.card, 700)
    ship(connection, timezone.now())

    properties = profile_of(fake, world.customer)["properties"]
    assert properties["points_balance"] == 7
    assert "loyalty_points" not in properties and "loyalty_card_number" not in properties


# -- Klaviyo failing ---------------------------------------------------------------------------------------


def test_after_klaviyo_500s_every_event_arrives_once_in_order_and_the_profile_has_the_latest_points(world, fake):
    connection = connect(world, fake)
    for amount in (300, 450, 900):
        buy(world.card, amount)
    fake.fail(500, times=3)

    now = timezone.now()
    for hour in range(6):
        ship(connection, now + dt.timedelta(hours=hour))

    world.card.refresh_from_db()
    assert statuses(connection) == {"delivered": 7}
    profile = profile_of(fake, world.customer)
    assert profile["properties"]["loyalty_points"] == world.card.balance == 16
    assert [e["unique_id"] for e in fake.events_of(profile)] == metric_event_ids(world.merchant)
    assert len(fake.calls("/api/profile-import")) == 4  # three refused tries, then one that went through


def test_a_timed_out_call_that_klaviyo_carried_out_is_sent_again_without_doubling_the_event(world, fake):
    connection = connect(world, fake)
    buy(world.card, 1000)
    fake.hang(1.0, path="/api/events", after=1)  # the second event call is recorded, the answer is lost

    now = timezone.now()
    ship(connection, now, transport=ShortTimeouts())
    first_try = {d.event.event_type: d for d in deliveries(connection)}
    assert first_try["wallet.card.enrolled"].status == "delivered"
    waiting = first_try["wallet.points.changed"]
    assert (waiting.status, waiting.attempts) == ("pending", 1) and "timed out" in waiting.last_error

    ship(connection, now + dt.timedelta(hours=1), transport=ShortTimeouts())
    assert statuses(connection) == {"delivered": 3}
    recorded = [e["unique_id"] for e in fake.events_of(profile_of(fake, world.customer))]
    assert recorded == metric_event_ids(world.merchant)  # the resent event is not doubled
    assert len(fake.calls("/api/events")) == 4


def test_rate_limited_batch_is_not_tried_again_before_retry_after(world, fake):
    connection = connect(world, fake)
    buy(world.card, 800)
    fake.fail(429, retry_after="120")

    now = timezone.now()
    ship(connection, now)
    for delivery in deliveries(connection):
        assert delivery.status == "pending" and "rate limit" in delivery.last_error
        assert delivery.next_attempt_at >= now + dt.timedelta(seconds=120)
    calls = len(fake.requests)

    ship(connection, now + dt.timedelta(seconds=119))
    assert len(fake.requests) == calls  # nothing sent before Klaviyo said it could take more
    ship(connection, now + dt.timedelta(seconds=121))
    assert statuses(connection) == {"delivered": 3}


def test_without_retry_after_the_wait_comes_from_klaviyos_throttle_message(world, fake):
    connection = connect(world, fake)
    fake.fail(429, detail="Request was throttled. Expected available in 45 seconds.")

    now = timezone.now()
    ship(connection, now)
    [delivery] = deliveries(connection)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at >= now + dt.timedelta(seconds=45)


def test_rate_limit_mid_batch_keeps_what_was_sent_and_defers_the_rest(world, fake):
    connection = connect(world, fake)
    buy(world.card, 600)
    fake.fail(429, retry_after="60", path="/api/events", after=1)

    now = timezone.now()
    ship(connection, now)
    by_type = {d.event.event_type: d for d in deliveries(connection)}
    assert by_type["wallet.card.enrolled"].status == "delivered"
    for later in ("wallet.points.changed", "wallet.purchase.recorded"):
        assert by_type[later].status == "pending"
        assert by_type[later].next_attempt_at >= now + dt.timedelta(seconds=60)


def test_klaviyo_down_dead_letters_after_max_attempts_and_a_replay_delivers_each_event_once(world, fake):
    connection = connect(world, fake, max_attempts=3)
    buy(world.card, 400)
    fake.down(503)

    now = timezone.now()
    for hour in range(4):
        ship(connection, now + dt.timedelta(hours=hour))
    assert statuses(connection) == {"dead": 3}
    assert all("Klaviyo unavailable" in d.last_error and d.attempts == 3 for d in deliveries(connection))
    assert fake.profiles == {}

    fake.up()
    assert retry_dead_letters(connection.pk, now=now + dt.timedelta(hours=5)) == 3
    ship(connection, now + dt.timedelta(hours=5))
    assert statuses(connection) == {"delivered": 3}
    assert [e["unique_id"] for e in fake.events] == metric_event_ids(world.merchant)


def test_a_wrong_api_key_dead_letters_the_batch_at_once_with_a_clear_error(world, fake):
    connection = connect(world, fake, api_key="pk_revoked_0000")
    buy(world.card, 400)

    ship(connection, timezone.now())
    assert statuses(connection) == {"dead": 3}
    for delivery in deliveries(connection):
        assert delivery.attempts == 1
        assert "Klaviyo refused the API key" in delivery.last_error and "401" in delivery.last_error
    assert fake.profiles == {} and len(fake.requests) == 1  # the batch stops at the first 401


def test_a_customer_klaviyo_refuses_fails_alone_and_the_others_are_delivered(world, fake):
    connection = connect(world, fake)
    refused = make_customer()
    refused_card = make_card(world.program, refused)
    get_user_model().objects.filter(pk=refused.user_id).update(email="not-an-email")
    buy(world.card, 500)
    buy(refused_card, 500)

    ship(connection, timezone.now())
    for delivery in deliveries(connection):
        if delivery.customer_id == refused.pk:
            assert delivery.status == "dead" and "Invalid email address" in delivery.last_error
        else:
            assert delivery.status == "delivered"
    assert profile_of(fake, world.customer)["properties"]["loyalty_points"] == 5
    refused_calls = [c for c in fake.calls("/api/profile-import")
                     if c["body"]["data"]["attributes"]["email"] == "not-an-email"]
    assert len(refused_calls) == 1  # asked once per batch, not once per event


def test_a_key_without_the_events_scope_fails_the_events_and_says_which_scope(world, fake):
    connection = connect(world, fake)
    fake.scopes.discard("events:write")
    buy(world.card, 500)

    ship(connection, timezone.now())
    assert statuses(connection) == {"dead": 3}
    assert all("lacks a scope" in d.last_error and "events:write" in d.last_error for d in deliveries(connection))
    assert profile_of(fake, world.customer)["properties"]["loyalty_points"] == 5  # the profile still went
    assert len(fake.calls("/api/events")) == 1  # the batch does not ask again for the same refusal


def test_a_phone_number_held_by_another_profile_still_updates_the_customers_email_profile(world, fake):
    connection = connect(world, fake)
    get_user_model().objects.filter(pk=world.customer.user_id).update(phone="+447700900123")
    fake._new_profile({"email": world.customer.user.email})  # the customer's profile in Klaviyo...
    fake._new_profile({"phone_number": "+447700900123"})  # ...and another one already holding their number
    buy(world.card, 900)

    ship(connection, timezone.now())
    assert statuses(connection) == {"delivered": 3}
    assert profile_of(fake, world.customer)["properties"]["loyalty_points"] == 9
    assert [c["body"]["data"]["attributes"].get("phone_number") for c in fake.calls("/api/profile-import")] == [
        "+447700900123", None]


# -- consent and erasure ---------------------------------------------------------------------------------


def test_opting_in_subscribes_to_the_merchants_list_and_opting_out_unsubscribes(world, fake):
    connection = connect(world, fake)
    set_channel_consent(world.customer, world.merchant, {"email": True})
    now = timezone.now()
    ship(connection, now)

    profile = profile_of(fake, world.customer)
    assert profile["subscriptions"] == {"email": "SUBSCRIBED"} and profile["id"] in fake.lists[LIST_ID]
    [subscribe] = fake.calls(SUBSCRIBE)
    job = subscribe["body"]["data"]
    assert job["relationships"]["list"]["data"] == {"type": "list", "id": LIST_ID}
    assert job["attributes"]["custom_source"] == "Tessera loyalty wallet"

    set_channel_consent(world.customer, world.merchant, {"email": False})
    ship(connection, now + dt.timedelta(minutes=1))
    assert profile["subscriptions"] == {"email": "UNSUBSCRIBED"} and profile["id"] not in fake.lists[LIST_ID]
    assert statuses(connection) == {"delivered": 3}


def test_consent_sends_the_current_choice_so_an_older_event_cannot_resubscribe(world, fake):
    connection = connect(world, fake)
    set_channel_consent(world.customer, world.merchant, {"email": True})
    set_channel_consent(world.customer, world.merchant, {"email": False})

    ship(connection, timezone.now())
    assert statuses(connection) == {"delivered": 3}
    assert fake.calls(SUBSCRIBE) == []
    assert len(fake.calls(UNSUBSCRIBE)) == 2
    assert profile_of(fake, world.customer)["subscriptions"] == {"email": "UNSUBSCRIBED"}


def test_without_a_list_id_consent_is_left_to_klaviyo(world, fake):
    connection = connect(world, fake, list_id=None)
    set_channel_consent(world.customer, world.merchant, {"email": True, "sms": True})

    ship(connection, timezone.now())
    assert statuses(connection) == {"delivered": 3}
    assert fake.calls(SUBSCRIBE) == [] and profile_of(fake, world.customer)["subscriptions"] == {}


def test_erasure_deletes_the_klaviyo_profile_when_tessera_owns_the_external_id(world, fake):
    connection = connect(world, fake, use_external_id="yes")
    buy(world.card, 500)
    now = timezone.now()
    ship(connection, now)
    profile = profile_of(fake, world.customer)
    assert profile["attributes"]["external_id"] == f"tessera-{world.customer.pk}"
    sent_before = len(fake.requests)

    erase_customer(world.customer)
    ship(connection, now + dt.timedelta(minutes=1))

    assert fake.deleted == [profile["id"]] and fake.profiles == {}
    assert [r["path"] for r in fake.requests[sent_before:]] == ["/api/profiles", "/api/data-privacy-deletion-jobs"]
    assert statuses(connection)["dead"] == 0


def test_erasure_without_the_external_id_is_a_dead_letter_saying_what_to_delete(world, fake):
    connection = connect(world, fake)
    buy(world.card, 500)
    now = timezone.now()
    ship(connection, now)
    sent_before = len(fake.requests)

    erase_customer(world.customer)
    ship(connection, now + dt.timedelta(minutes=1))

    [erasure] = [d for d in deliveries(connection) if d.event.event_type == "wallet.customer.erased"]
    assert erasure.status == "dead"
    assert f"Delete the Klaviyo profile whose tessera_customer_id is {world.customer.pk}" in erasure.last_error
    assert len(fake.requests) == sent_before  # nothing personal is sent about an erased customer


# -- configuration ---------------------------------------------------------------------------------------


def test_a_connection_without_the_api_key_is_refused_naming_the_field(world, fake):
    with pytest.raises(ValidationFailed) as refused:
        connect(world, fake, api_key=None)
    assert refused.value.fields == {"api_key": ["This field is required."]}


@pytest.mark.parametrize(("values", "field"), [
    ({"api_key": "AbC123"}, "api_key"),  # the public site id, not a private key
    ({"api_base_url": "http://klaviyo.example"}, "api_base_url"),
    ({"use_external_id": "maybe"}, "use_external_id"),
])
def test_settings_klaviyo_cannot_use_are_refused(world, fake, values, field):
    with pytest.raises(ValidationFailed) as refused:
        connect(world, fake, **values)
    assert list(refused.value.fields) == [field]
