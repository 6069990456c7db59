"""Communication preferences: opt-in per merchant and channel, quiet hours, pause all."""
import datetime as dt

import pytest

from tests.factories import build_world, make_card
from wallet.models import CommunicationPreference, Customer, DomainEvent
from wallet.services.preferences import may_contact, set_channel_consent

pytestmark = pytest.mark.django_db


def test_every_channel_is_off_until_the_customer_opts_in(customer_client, world):
    body = customer_client.get("/api/v1/preferences/").json()
    assert body["communication_paused"] is False and body["quiet_hours_start"] is None
    [merchant] = body["merchants"]
    assert merchant["merchant"]["id"] == world.merchant.pk
    assert merchant["channels"] == {"push": False, "email": False, "sms": False, "wallet_pass": False}


def test_opting_in_per_merchant_and_channel_records_consent_events(customer_client, world):
    url = f"/api/v1/preferences/merchants/{world.merchant.pk}/"
    response = customer_client.patch(url, {"email": True, "push": True}, format="json")
    assert response.status_code == 200
    assert response.json()["channels"] == {"push": True, "email": True, "sms": False, "wallet_pass": False}
    customer_client.patch(url, {"push": False}, format="json")
    assert customer_client.get(url).json()["channels"]["push"] is False
    events = DomainEvent.objects.filter(event_type="wallet.consent.changed", merchant_id=world.merchant.pk)
    assert [(e.payload["channel"], e.payload["opted_in"]) for e in events.order_by("id")] == [
        ("push", True), ("email", True), ("push", False)
    ]
    # Sending the same setting again changes nothing and records nothing.
    before = events.count()
    customer_client.patch(url, {"email": True}, format="json")
    assert events.count() == before


def test_consent_is_per_merchant(customer_client, world):
    other = build_world()
    make_card(other.program, world.customer)
    customer_client.patch(f"/api/v1/preferences/merchants/{world.merchant.pk}/", {"sms": True}, format="json")
    body = customer_client.get("/api/v1/preferences/").json()
    channels = {m["merchant"]["id"]: m["channels"]["sms"] for m in body["merchants"]}
    assert channels == {world.merchant.pk: True, other.merchant.pk: False}


def test_quiet_hours_and_pause_all(customer_client, world):
    response = customer_client.patch(
        "/api/v1/preferences/",
        {"communication_paused": True, "quiet_hours_start": "21:30", "quiet_hours_end": "07:00"},
        format="json",
    )
    assert response.status_code == 200
    customer = Customer.objects.get(pk=world.customer.pk)
    assert customer.communication_paused and customer.quiet_hours_start == dt.time(21, 30)
    cleared = customer_client.patch(
        "/api/v1/preferences/", {"quiet_hours_start": None, "quiet_hours_end": None}, format="json"
    )
    assert cleared.json()["quiet_hours_start"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_hours_start": "21:00"},  # end missing
        {"quiet_hours_start": "25:00", "quiet_hours_end": "07:00"},
        {"quiet_hours_start": "07:00", "quiet_hours_end": "07:00"},
        {"communication_paused": "sometimes"},
        {"volume": 11},
    ],
)
def test_bad_settings_are_refused_and_change_nothing(customer_client, world, body):
    response = customer_client.patch("/api/v1/preferences/", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] in {"validation_failed", "invalid_request"}
    customer = Customer.objects.get(pk=world.customer.pk)
    assert (customer.communication_paused, customer.quiet_hours_start) == (False, None)


def test_unknown_channel_or_merchant_is_refused(customer_client, world):
    url = f"/api/v1/preferences/merchants/{world.merchant.pk}/"
    assert customer_client.patch(url, {"fax": True}, format="json").status_code == 400
    unknown_merchant = customer_client.patch("/api/v1/preferences/merchants/999999/", {"sms": True}, format="json")
    assert unknown_merchant.status_code == 404
    assert not CommunicationPreference.objects.exists()


def test_preferences_need_a_customer_login(anon_client, world):
    assert anon_client.get("/api/v1/preferences/").status_code == 401


def test_may_contact_checks_pause_opt_in_and_quiet_hours_in_the_customers_zone(world):
    customer = world.customer
    customer.time_zone = "Pacific/Honolulu"
    customer.save()
    noon_honolulu = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)  # 12:00 in Honolulu
    assert may_contact(customer, world.merchant, "email", noon_honolulu) == (False, "not_opted_in")
    set_channel_consent(customer, world.merchant, {"email": True})
    assert may_contact(customer, world.merchant, "email", noon_honolulu) == (True, "allowed")
    assert may_contact(customer, world.merchant, "sms", noon_honolulu) == (False, "not_opted_in")
    customer.quiet_hours_start, customer.quiet_hours_end = dt.time(21, 0), dt.time(8, 0)
    customer.save()
    # 07:00 UTC is 21:00 in Honolulu the evening before: quiet.
    assert may_contact(customer, world.merchant, "email", dt.datetime(2026, 6, 2, 7, 0, tzinfo=dt.UTC)) == (
        False, "quiet_hours"
    )
    assert may_contact(customer, world.merchant, "email", noon_honolulu) == (True, "allowed")
    customer.communication_paused = True
    customer.save()
    assert may_contact(customer, world.merchant, "email", noon_honolulu) == (False, "paused")
