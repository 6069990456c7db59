"""A customer's data export tells them what merchants sent them or decided about them (the send log),
which phones are registered for push (never the token itself) and how their consent changed; erasing
the account strips what could name them from the send log the merchants keep."""
import json

import pytest

from engagement.campaigns import schedule_campaign
from engagement.channels.base import SendFailed
from engagement.dispatch import dispatch_due
from engagement.models import SendLog
from tests.api.conftest import client_for
from tests.engagement.conftest import join, make_campaign, make_member, opt_out_of, utc
from wallet.api.privacy import ExportSerializer
from wallet.services.privacy import erase_customer, export_customer_data

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/me/export/"
PUSH_TOKEN = "f00d" * 16
TEN_IN_PARIS = utc(2026, 12, 7, 9, 0)  # the campaigns' 10:00 local, for members in Paris


@pytest.fixture
def camille(shop, other_shop, recording_channels):
    """In Paris, a member of both shops, opted in to email only; each shop's campaign goes out by email
    and SMS, so each leaves one email sent and one SMS skipped for want of consent. A neighbour in
    Paris, opted in to both, hears the first shop's campaign at the same moment."""
    customer = make_member(shop, "Europe/Paris", opt_in=("email",))
    join(customer, other_shop, opt_in=("email",))
    customer.neighbour = make_member(shop, "Europe/Paris", opt_in=("email", "sms"))  # hears the same campaign
    for each in (shop, other_shop):
        schedule_campaign(make_campaign(each, channels=["email", "sms"], name=f"Internal: lapsed {each.store.pk}"),
                          now=utc(2026, 12, 1))
    return customer


def export_of(customer) -> tuple[dict, str]:
    response = client_for(customer.user).get(EXPORT)
    assert response.status_code == 200
    return json.loads(response.content), response.content.decode()


def test_my_export_lists_every_decision_on_messages_to_me_at_both_merchants(camille, shop, other_shop):
    assert dispatch_due(TEN_IN_PARIS) == 3

    data, text = export_of(camille)

    assert {(m["merchant"]["name"], m["channel"], m["decision"], m["reason"]) for m in data["messages"]} == {
        ("Café Lumière", "email", "sent", "sent"),
        ("Café Lumière", "sms", "skipped", "no_consent"),
        ("Bakery Brava", "email", "sent", "sent"),
        ("Bakery Brava", "sms", "skipped", "no_consent"),
    }
    skipped = next(m for m in data["messages"] if m["reason"] == "no_consent")
    assert skipped["reason_text"] == "Not opted in for this merchant and channel"
    assert skipped["offer"] == "Double points week" and skipped["kind"] == "campaign"
    assert {m["local_time"] for m in data["messages"]} == {"2026-12-07 10:00 CET"}
    assert {m["decided_at"] for m in data["messages"]} == {"2026-12-07T09:00:00+00:00"}
    assert "Internal: lapsed" not in text  # the merchant's campaign name is its own working note


def test_another_customers_messages_never_appear_in_my_export(camille):
    assert dispatch_due(TEN_IN_PARIS) == 3
    neighbours_logs = set(SendLog.objects.filter(customer=camille.neighbour).values_list("pk", flat=True))
    assert len(neighbours_logs) == 2

    data, _ = export_of(camille)

    exported = {m["id"] for m in data["messages"]}
    assert len(exported) == 4 and not exported & neighbours_logs
    assert set(SendLog.objects.filter(pk__in=exported).values_list("customer", flat=True)) == {camille.pk}


def test_my_push_devices_are_listed_by_a_token_prefix_never_the_token(camille):
    registered = client_for(camille.user).post("/api/v1/push-devices/", {"platform": "fcm", "token": PUSH_TOKEN},
                                               format="json")
    assert registered.status_code == 201

    data, text = export_of(camille)

    [device] = data["push_devices"]
    assert device["platform"] == "fcm" and device["is_active"] is True
    assert PUSH_TOKEN.startswith(device["token_prefix"]) and 0 < len(device["token_prefix"]) <= 8
    assert PUSH_TOKEN[:12] not in text


def test_the_export_still_matches_its_documented_schema_section_for_section(camille, shop):
    dispatch_due(TEN_IN_PARIS)
    opt_out_of(camille, shop, "email")
    client_for(camille.user).post("/api/v1/push-devices/", {"platform": "apns", "token": PUSH_TOKEN}, format="json")

    data, _ = export_of(camille)

    serializer = ExportSerializer(data=data)
    assert serializer.is_valid(), serializer.errors
    fields = ExportSerializer().fields
    assert set(data) == set(fields)  # no section the schema does not describe, none missing
    assert set(data["messages"][0]) == set(fields["messages"].child.fields)
    assert set(data["push_devices"][0]) == set(fields["push_devices"].child.fields)
    history = [(c["merchant_name"], c["channel"], c["opted_in"]) for c in data["communication"]["consent_history"]]
    assert history == [("Café Lumière", "email", True), ("Bakery Brava", "email", True),
                       ("Café Lumière", "email", False)]


def test_without_engagement_hooks_the_core_export_stands_alone(camille, settings):
    settings.TESSERA_EXPORT_HOOKS = []
    data = export_customer_data(camille)
    assert "messages" not in data and "push_devices" not in data
    assert ExportSerializer(data=data).is_valid()


def test_erasure_keeps_the_merchants_results_but_nothing_that_names_me(camille, recording_channels):
    email = camille.user.email
    recording_channels.failing["email"] = SendFailed(f"550 mailbox {email} unknown", permanent=True)
    client_for(camille.user).post("/api/v1/push-devices/", {"platform": "fcm", "token": PUSH_TOKEN}, format="json")
    dispatch_due(TEN_IN_PARIS)
    logs = SendLog.objects.filter(customer=camille)
    assert logs.filter(detail__contains=email).count() == 2  # the provider quoted the address

    erase_customer(camille)

    assert sorted(logs.values_list("channel", "decision", "reason")) == [
        ("email", "failed", "provider_error"), ("email", "failed", "provider_error"),
        ("sms", "skipped", "no_consent"), ("sms", "skipped", "no_consent"),
    ]  # the campaigns' results and the frequency caps still count them
    assert not logs.exclude(detail="").exists() and not logs.exclude(provider_message_id="").exists()
    after = json.dumps(export_customer_data(camille))
    assert email not in after and PUSH_TOKEN[:6] not in after
    assert json.loads(after)["push_devices"] == []


def test_erased_sent_messages_lose_the_providers_message_id(camille):
    dispatch_due(TEN_IN_PARIS)
    sent = SendLog.objects.filter(customer=camille, decision="sent")
    assert sent.count() == 2 and not sent.filter(provider_message_id="").exists()

    erase_customer(camille)

    assert sent.count() == 2 and set(sent.values_list("provider_message_id", flat=True)) == {""}
