"""Salesforce: outbox events driven through the real delivery engine (fan_out, deliver_batch) to a local
fake org (salesforce_fake.py) that checks the OAuth login and the sObject Collections upserts as
Salesforce documents them. Time moves with `now=`; nothing sleeps except the timeout test."""
import datetime as dt
import email.utils
import json

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from core.errors import ValidationFailed
from crm_sync import registry
from crm_sync.base import ConfigInvalid
from crm_sync.connections import create_connection
from crm_sync.connectors.salesforce import auth
from crm_sync.connectors.salesforce.auth import Credentials
from crm_sync.connectors.salesforce.client import SalesforceApi
from crm_sync.connectors.salesforce.connector import SalesforceConnector
from crm_sync.delivery import deliver_batch, retry_dead_letters
from crm_sync.fanout import fan_out
from crm_sync.models import CrmDelivery
from tests.crm.salesforce_fake import FakeSalesforce
from tests.factories import make_card, make_customer
from tests.wallet.helpers import buy
from wallet.models import DomainEvent, Purchase
from wallet.services import erase_customer, redeem_reward, refund_purchase
from wallet.services.preferences import set_channel_consent

pytestmark = pytest.mark.django_db

CONNECTOR = "crm_sync.connectors.salesforce.connector.SalesforceConnector"
CONSUMER_KEY = "3MVG9fakeConsumerKeyForTesseraLoyalty000"
USERNAME = "loyalty.integration@northbean.example"
CLIENT_SECRET = "F00DCAFE8BADF00D"
PURCHASES = ["wallet.purchase.recorded"]


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def keys():
    """The key whose certificate is on the connected app, and one that is not."""
    app_key, other = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    public = app_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {"private": _pem(app_key), "public": public, "other": _pem(other)}


@pytest.fixture(autouse=True)
def installed(settings):
    settings.TESSERA_CRM_CONNECTORS = [CONNECTOR]
    registry.reset()
    auth.TOKENS.clear()
    yield
    registry.reset()
    auth.TOKENS.clear()


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch):
    monkeypatch.setattr(SalesforceConnector, "timeout", httpx.Timeout(1.0))


@pytest.fixture
def org(keys):
    fake = FakeSalesforce(consumer_key=CONSUMER_KEY, username=USERNAME, public_key_pem=keys["public"],
                          client_secret=CLIENT_SECRET).start()
    yield fake
    fake.stop()


def connect(merchant, org, keys, *, event_types=(), field_mapping=None, max_attempts=8, **values):
    settings = {"auth_flow": "jwt_bearer", "consumer_key": CONSUMER_KEY, "login_url": org.url,
                "username": USERNAME, "private_key": keys["private"], "api_version": "v62.0", **values}
    return create_connection(merchant, "salesforce", "Salesforce", settings, event_types=list(event_types),
                             field_mapping=field_mapping, max_attempts=max_attempts)


def deliveries(connection) -> list[CrmDelivery]:
    return list(CrmDelivery.objects.filter(connection=connection).order_by("event_id"))


def statuses(connection) -> set[str]:
    return {d.status for d in deliveries(connection)}


def later(connection) -> dt.datetime:
    """The moment every pending delivery of the connection is due again."""
    due = [d.next_attempt_at for d in deliveries(connection) if d.status == CrmDelivery.Status.PENDING]
    return max(due) + dt.timedelta(seconds=1)


def timeline_events(customer_id) -> list[int]:
    """The customer's outbox events that become loyalty event records here (enrolment and purchases)."""
    return list(DomainEvent.objects.filter(
        customer_id=customer_id, event_type__in=["wallet.card.enrolled", "wallet.purchase.recorded"],
    ).order_by("pk").values_list("pk", flat=True))


def settle(connection, *, rounds=10) -> None:
    for _ in range(rounds):
        if CrmDelivery.Status.PENDING not in statuses(connection):
            return
        deliver_batch(connection.pk, now=later(connection))
    raise AssertionError(f"still pending after {rounds} rounds: {[d.last_error for d in deliveries(connection)]}")


# -- what is sent ------------------------------------------------------------------------------------------


def test_purchases_upsert_the_contact_with_points_and_one_event_record_each(world, org, keys):
    connection = connect(world.merchant, org, keys)
    first, second = buy(world.card, 1250), buy(world.card, 400)
    fan_out(connection.pk)

    report = deliver_batch(connection.pk)

    world.card.refresh_from_db()
    assert report.delivered == report.sent == len(deliveries(connection)) and statuses(connection) == {"delivered"}
    contact = org.contact(world.customer.pk)
    assert contact["Email"] == world.customer.user.email
    assert contact["Loyalty_Points__c"] == world.card.balance == first.points_earned + second.points_earned
    assert contact["Loyalty_Tier__c"] == "Silver" and contact["Loyalty_Card_Number__c"] == world.card.number
    purchases = [e for e in org.events().values() if e["Event_Type__c"] == "wallet.purchase.recorded"]
    assert sorted(p["Amount__c"] for p in purchases) == [4.0, 12.5]
    assert all(p["Currency__c"] == "EUR" and p["Contact__r"] == {"Tessera_Customer_Id__c": str(world.customer.pk)}
               for p in purchases)
    assert sorted(int(key) for key in org.events()) == timeline_events(world.customer.pk)  # not points.changed


def test_calls_are_sobject_collections_upserts_on_one_connection(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 1000)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    calls = org.upsert_calls()
    assert [c["path"] for c in calls] == [
        "/services/data/v62.0/composite/sobjects/Contact/Tessera_Customer_Id__c",
        "/services/data/v62.0/composite/sobjects/Tessera_Loyalty_Event__c/Tessera_Event_Id__c",
    ]
    assert all(c["headers"]["authorization"].startswith("Bearer 00Dfake!") for c in calls)
    bodies = [json.loads(c["body"]) for c in calls]
    assert all(b["allOrNone"] is False for b in bodies)
    assert [r["attributes"] for r in bodies[0]["records"]] == [{"type": "Contact"}]
    assert len({c["port"] for c in calls}) == 1  # keep-alive: one TCP connection for the whole push


def test_jwt_assertion_carries_the_documented_claims_and_the_token_is_reused(world, org, keys):
    connection = connect(world.merchant, org, keys)
    for _ in range(2):
        buy(world.card, 100)
        fan_out(connection.pk)
        deliver_batch(connection.pk)

    assert len(org.token_requests) == 1  # the second batch reused the cached token
    login = org.token_requests[0]
    assert login["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = login["claims"]
    assert (claims["iss"], claims["sub"], claims["aud"]) == (CONSUMER_KEY, USERNAME, org.url)
    assert 0 < claims["exp"] - dt.datetime.now(dt.UTC).timestamp() <= 180
    assert statuses(connection) == {"delivered"}


def test_an_expired_token_is_minted_again(world, org, keys, monkeypatch):
    connection = connect(world.merchant, org, keys)
    clock = [1000.0]
    monkeypatch.setattr(auth.TOKENS, "clock", lambda: clock[0])
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)
    clock[0] += auth.TOKEN_TTL_SECONDS + 1
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert len(org.token_requests) == 2 and statuses(connection) == {"delivered"}


def test_client_credentials_flow_logs_in_with_the_consumer_secret(world, org, keys):
    connection = connect(world.merchant, org, keys, auth_flow="client_credentials", username="", private_key="",
                         client_secret=CLIENT_SECRET)
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert org.token_requests == [{"grant_type": "client_credentials", "client_id": CONSUMER_KEY,
                                   "client_secret": CLIENT_SECRET}]
    assert statuses(connection) == {"delivered"}


def test_redemption_and_refund_become_signed_point_records(world, org, keys):
    connection = connect(world.merchant, org, keys)
    purchase = buy(world.card, 30000)
    redeem_reward(world.card, world.coffee, idempotency_key="redeem-1")
    refund_purchase(Purchase.objects.get(pk=purchase.purchase_id), amount=10000, idempotency_key="refund-1")
    fan_out(connection.pk)
    settle(connection)

    by_type = {e["Event_Type__c"]: e for e in org.events().values()}
    assert by_type["wallet.reward.redeemed"]["Points__c"] == -100
    assert by_type["wallet.purchase.refunded"]["Points__c"] < 0
    assert (by_type["wallet.purchase.refunded"]["Amount__c"], by_type["wallet.purchase.refunded"]["Currency__c"]) == \
        (-100.0, "EUR")
    assert by_type["wallet.purchase.recorded"]["Points__c"] == purchase.points_earned
    world.card.refresh_from_db()
    assert org.contact(world.customer.pk)["Loyalty_Points__c"] == world.card.balance


def test_consent_is_written_to_the_contact_without_a_timeline_record(world, org, keys):
    connection = connect(world.merchant, org, keys)
    set_channel_consent(world.customer, world.merchant, {"email": True})
    set_channel_consent(world.customer, world.merchant, {"email": False})
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert org.contact(world.customer.pk)["HasOptedOutOfEmail"] is True
    assert not [e for e in org.events().values() if e["Event_Type__c"] == "wallet.consent.changed"]
    assert statuses(connection) == {"delivered"}


def test_an_erased_customer_is_anonymised_in_salesforce(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 500)
    fan_out(connection.pk)
    deliver_batch(connection.pk)
    records_before = set(org.events())

    erase_customer(world.customer)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    contact = org.contact(world.customer.pk)
    assert (contact["Email"], contact["FirstName"], contact["Phone"]) == (None, None, None)
    assert contact["LastName"] == "Erased customer" and contact["HasOptedOutOfEmail"] is True
    assert set(org.events()) == records_before  # nothing more is told about them
    assert statuses(connection) == {"delivered"}


# -- batch limits ------------------------------------------------------------------------------------------


def test_450_records_go_in_three_calls_of_at_most_200(org, keys):
    credentials = Credentials(flow="jwt_bearer", login_url=org.url, consumer_key=CONSUMER_KEY, username=USERNAME,
                              private_key=keys["private"])
    records = [{"Tessera_Customer_Id__c": f"c{n}", "LastName": f"Member {n}"} for n in range(450)]
    with SalesforceApi(credentials) as api:
        results = api.upsert("Contact", "Tessera_Customer_Id__c", records)

    assert [len(json.loads(c["body"])["records"]) for c in org.upsert_calls()] == [200, 200, 50]
    assert len(results) == 450 and all(r["success"] and r["created"] for r in results)
    assert len(org.records["Contact"]) == 450


def test_the_engine_hands_salesforce_batches_of_200_events(world, org, keys):
    connection = connect(world.merchant, org, keys, event_types=PURCHASES)
    for n in range(201):
        buy(world.card, 100, f"sale-{n}")
    fan_out(connection.pk)

    sent = [deliver_batch(connection.pk).sent for _ in range(3)]

    assert SalesforceConnector.batch_size == 200 and sent == [200, 1, 0]
    assert [len(json.loads(c["body"])["records"]) for c in org.upsert_calls("Tessera_Loyalty_Event__c")] == [200, 1]
    assert len(org.events()) == 201 and statuses(connection) == {"delivered"}


# -- failures ----------------------------------------------------------------------------------------------


def two_customers_buying(world, connection):
    other = make_card(world.program, make_customer())
    for amount in (100, 200, 300):
        buy(world.card, amount)
        buy(other, amount)
    fan_out(connection.pk)
    return other


def timeline(org, customer_id) -> list[int]:
    """The customer's loyalty event records in the order Salesforce created them."""
    link = {"Tessera_Customer_Id__c": str(customer_id)}
    return [int(key) for obj, key in org.created
            if obj == "Tessera_Loyalty_Event__c" and org.events()[key]["Contact__r"] == link]


def test_after_500s_every_event_arrives_once_and_in_order_per_customer(world, org, keys):
    connection = connect(world.merchant, org, keys)
    other = two_customers_buying(world, connection)
    org.fail(500, times=3)

    assert deliver_batch(connection.pk).retrying == len(deliveries(connection))
    settle(connection)

    assert statuses(connection) == {"delivered"}
    for card in (world.card, other):
        card.refresh_from_db()
        customer_id = card.wallet.customer_id
        expected = timeline_events(customer_id)
        assert timeline(org, customer_id) == expected and len(expected) == 4  # enrolled + 3 purchases, in order
        assert org.contact(customer_id)["Loyalty_Points__c"] == card.balance
    assert all(org.writes[("Tessera_Loyalty_Event__c", key)] == 1 for key in org.events())


def test_429_waits_at_least_retry_after(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    org.fail(429, retry_after="120")
    start = timezone.now()

    assert deliver_batch(connection.pk, now=start).retrying == len(deliveries(connection))
    assert all(d.next_attempt_at >= start + dt.timedelta(seconds=120) for d in deliveries(connection))
    calls = len(org.api_calls)
    assert deliver_batch(connection.pk, now=start + dt.timedelta(seconds=119)).sent == 0
    assert len(org.api_calls) == calls
    assert deliver_batch(connection.pk, now=start + dt.timedelta(seconds=121)).delivered == len(deliveries(connection))


def test_retry_after_as_an_http_date_is_honoured(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    start = timezone.now()
    org.fail(429, retry_after=email.utils.format_datetime(start + dt.timedelta(seconds=90), usegmt=True))

    deliver_batch(connection.pk, now=start)

    assert all(d.next_attempt_at >= start + dt.timedelta(seconds=88) for d in deliveries(connection))


def test_request_limit_exceeded_is_a_rate_limit_not_an_auth_failure(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    org.fail(403, "REQUEST_LIMIT_EXCEEDED")
    start = timezone.now()

    deliver_batch(connection.pk, now=start)

    pending = deliveries(connection)
    assert {d.status for d in pending} == {"pending"} and len(org.token_requests) == 1
    assert all("REQUEST_LIMIT_EXCEEDED" in d.last_error for d in pending)
    assert all(d.next_attempt_at >= start + dt.timedelta(minutes=30) for d in pending)
    settle(connection)
    assert statuses(connection) == {"delivered"}


def test_a_crm_that_stays_down_dead_letters_then_replay_delivers_once(world, org, keys):
    connection = connect(world.merchant, org, keys, max_attempts=3)
    two_customers_buying(world, connection)
    org.go_down(503)
    now = timezone.now()
    for _ in range(3):
        deliver_batch(connection.pk, now=now)
        now += dt.timedelta(hours=2)  # past the longest backoff

    assert statuses(connection) == {"dead"}
    assert all("503" in d.last_error for d in deliveries(connection))
    org.come_back()
    assert retry_dead_letters(connection.pk, now=now) == len(deliveries(connection))
    deliver_batch(connection.pk, now=now)

    assert statuses(connection) == {"delivered"}
    assert all(count == 1 for (obj, _), count in org.writes.items() if obj == "Contact")
    assert all(org.writes[("Tessera_Loyalty_Event__c", key)] == 1 for key in org.events())


@pytest.mark.parametrize("values, reason", [
    ({"private_key": "other"}, "invalid_grant: invalid assertion"),
    ({"consumer_key": "3MVG9someOtherApp"}, "invalid_client_id"),
    ({"username": "someone.else@northbean.example"}, "user hasn't approved this consumer"),
])
def test_refused_login_dead_letters_with_the_reason(world, org, keys, values, reason):
    values = {k: keys["other"] if v == "other" else v for k, v in values.items()}
    connection = connect(world.merchant, org, keys, **values)
    buy(world.card, 100)
    fan_out(connection.pk)

    assert deliver_batch(connection.pk).dead == len(deliveries(connection))

    assert all("Salesforce refused the login" in d.last_error and reason in d.last_error
               for d in deliveries(connection))
    assert org.api_calls == []


def test_wrong_consumer_secret_dead_letters(world, org, keys):
    connection = connect(world.merchant, org, keys, auth_flow="client_credentials", username="", private_key="",
                         client_secret="not-the-secret")
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert statuses(connection) == {"dead"}
    assert "invalid_client: invalid client credentials" in deliveries(connection)[0].last_error


def test_an_expired_session_is_refreshed_once_and_delivered(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)
    org.expire_sessions()
    buy(world.card, 100)
    fan_out(connection.pk)

    deliver_batch(connection.pk)

    assert statuses(connection) == {"delivered"} and len(org.token_requests) == 2


def test_a_session_refused_twice_is_rejected(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    org.fail(401, "INVALID_SESSION_ID", times=2)

    deliver_batch(connection.pk)

    assert statuses(connection) == {"dead"} and len(org.token_requests) == 2
    assert "INVALID_SESSION_ID" in deliveries(connection)[0].last_error


def test_a_timeout_is_retried_and_leaves_one_record_each(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    org.hang(2.0)  # longer than the client's 1 s; the fake still writes afterwards, as a server may

    report = deliver_batch(connection.pk)

    assert report.retrying == len(deliveries(connection))
    assert all("Timeout" in d.last_error for d in deliveries(connection))
    settle(connection)
    assert statuses(connection) == {"delivered"}
    assert sorted(int(key) for key in org.events()) == timeline_events(world.customer.pk)
    assert len(org.records["Contact"]) == 1


def test_a_record_error_is_final_for_that_customer_only(world, org, keys):
    connection = connect(world.merchant, org, keys)
    world.customer.user.email = "not-an-email"
    world.customer.user.save(update_fields=["email"])
    other = two_customers_buying(world, connection)

    deliver_batch(connection.pk)

    mine = [d for d in deliveries(connection) if d.customer_id == world.customer.pk]
    theirs = [d for d in deliveries(connection) if d.customer_id == other.wallet.customer_id]
    assert {d.status for d in mine} == {"dead"} and {d.status for d in theirs} == {"delivered"}
    assert all("INVALID_EMAIL_ADDRESS" in d.last_error for d in mine)
    sent = [r for c in org.upsert_calls("Tessera_Loyalty_Event__c") for r in json.loads(c["body"])["records"]]
    assert sent and all(r["Contact__r"] != {"Tessera_Customer_Id__c": str(world.customer.pk)} for r in sent)


def test_a_locked_row_is_retried(world, org, keys):
    connection = connect(world.merchant, org, keys)
    buy(world.card, 100)
    fan_out(connection.pk)
    org.fail_record(str(world.customer.pk), "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")

    assert deliver_batch(connection.pk).retrying == len(deliveries(connection))
    settle(connection)
    assert statuses(connection) == {"delivered"}


def test_a_mapped_field_missing_in_the_org_dead_letters_naming_it(world, org, keys):
    connection = connect(world.merchant, org, keys, field_mapping={"points": "Points_Balance__c"})
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert statuses(connection) == {"dead"}
    assert "No such column 'Points_Balance__c' on sobject of type Contact" in deliveries(connection)[0].last_error


def test_a_wrong_external_id_field_dead_letters_the_batch(world, org, keys):
    connection = connect(world.merchant, org, keys, field_mapping={"customer_id": "Loyalty_Member_Id__c"})
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert statuses(connection) == {"dead"}
    assert "404 (NOT_FOUND" in deliveries(connection)[0].last_error


def test_an_invalid_field_mapping_is_refused(world, org, keys):
    with pytest.raises(ConfigInvalid, match="loyalty_points"):
        SalesforceConnector.validate_field_mapping({"loyalty_points": "X__c"})
    connection = connect(world.merchant, org, keys, field_mapping={"points": "not a name"})
    buy(world.card, 100)
    fan_out(connection.pk)
    deliver_batch(connection.pk)

    assert statuses(connection) == {"dead"} and org.api_calls == []
    assert "field mapping is not valid: points" in deliveries(connection)[0].last_error


# -- configuration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("values, field", [
    ({"private_key": ""}, "private_key"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}, "private_key"),
    ({"username": ""}, "username"),
    ({"consumer_key": ""}, "consumer_key"),
    ({"auth_flow": "password"}, "auth_flow"),
    ({"auth_flow": "client_credentials", "private_key": ""}, "client_secret"),
    ({"auth_flow": "client_credentials", "client_secret": "s", "login_url": "https://login.salesforce.com"},
     "login_url"),
    ({"api_version": "v40.0"}, "api_version"),
    ({"api_version": "62"}, "api_version"),
    ({"instance_url": "http://na1.salesforce.com"}, "instance_url"),
    ({"login_url": "https://login.salesforce.com/services/oauth2/token"}, "login_url"),
    ({"sandbox": "yes"}, "sandbox"),
])
def test_invalid_settings_are_refused_naming_the_field(world, org, keys, values, field):
    with pytest.raises(ValidationFailed) as refused:
        connect(world.merchant, org, keys, **values)
    assert field in refused.value.fields
