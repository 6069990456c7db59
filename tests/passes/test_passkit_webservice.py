"""Apple's PassKit web service, step by step, as a device would call it."""
import datetime as dt
import io
import logging
import zipfile

import pytest
from django.core.management import call_command
from django.utils import timezone
from django.utils.http import http_date

from tests.factories import make_card
from tests.wallet.helpers import buy
from wallet.models import AppleDevice, AppleRegistration, Card
from wallet.passes.apple import webservice
from wallet.passes.apple.pkpass import CONTENT_TYPE, authentication_token

PASS_TYPE = "pass.test.tessera.loyalty"
DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
PUSH_TOKEN = "4be1d0c39e0d7a2f51c0e8a6b3f94d27c1aa58e90b3d6f4e2c7a19b80d5e3f61"


@pytest.fixture
def pass_certificates(settings, tmp_path):
    settings.APPLE_WALLET = {
        **settings.APPLE_WALLET,
        "PASS_TYPE_IDENTIFIER": PASS_TYPE,
        "TEAM_IDENTIFIER": "TEAMTEST42",
        "CERTIFICATE_PATH": str(tmp_path / "pass-certificate.pem"),
        "KEY_PATH": str(tmp_path / "pass-key.pem"),
        "KEY_PASSWORD": "",
        "WWDR_CERTIFICATE_PATH": str(tmp_path / "wwdr.pem"),
    }
    call_command("make_dev_pass_certificates", stdout=io.StringIO())


@pytest.fixture
def no_tag_window(monkeypatch):
    monkeypatch.setattr(webservice, "TAG_SAFETY_WINDOW", dt.timedelta(0))


def auth(card, token=None):
    return {"HTTP_AUTHORIZATION": f"ApplePass {token or authentication_token(card.number)}"}


def registration_url(card, device=DEVICE, pass_type=PASS_TYPE):
    return f"/passkit/v1/devices/{device}/registrations/{pass_type}/{card.number}"


def register(client, card, **extra):
    return client.post(registration_url(card), {"pushToken": PUSH_TOKEN}, content_type="application/json",
                       **(extra or auth(card)))


def serials(client, tag=None, device=DEVICE):
    url = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}"
    return client.get(url, {"passesUpdatedSince": tag} if tag else {})


def age(card, seconds=3600):
    Card.objects.filter(pk=card.pk).update(pass_updated_at=timezone.now() - dt.timedelta(seconds=seconds))
    card.refresh_from_db()


def test_device_flow_step_by_step(client, world, pass_certificates, no_tag_window):
    card = world.card
    age(card)

    assert register(client, card).status_code == 201
    assert register(client, card).status_code == 200
    assert AppleRegistration.objects.filter(card=card, device__device_library_identifier=DEVICE).count() == 1
    assert AppleDevice.objects.get(device_library_identifier=DEVICE).push_token == PUSH_TOKEN

    everything = serials(client)
    assert everything.status_code == 200
    assert everything["Content-Type"] == "application/json"
    assert everything.json()["serialNumbers"] == [card.number]
    tag = everything.json()["lastUpdated"]
    assert isinstance(tag, str)
    assert serials(client, tag).status_code == 204  # nothing changed since

    buy(card, 1000)  # a purchase moves pass_updated_at
    changed = serials(client, tag)
    assert changed.status_code == 200
    assert changed.json()["serialNumbers"] == [card.number]
    new_tag = changed.json()["lastUpdated"]
    assert int(new_tag) > int(tag)
    assert serials(client, new_tag).status_code == 204

    fetched = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}", **auth(card))
    assert fetched.status_code == 200
    assert fetched["Content-Type"] == CONTENT_TYPE
    assert "pass.json" in zipfile.ZipFile(io.BytesIO(fetched.content)).namelist()
    last_modified = fetched["Last-Modified"]

    age(card)  # the change is now in a past second: Last-Modified is its exact second
    fetched = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}", **auth(card))
    last_modified = fetched["Last-Modified"]
    unchanged = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}", HTTP_IF_MODIFIED_SINCE=last_modified,
                           **auth(card))
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    buy(card, 500)
    after_change = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}",
                              HTTP_IF_MODIFIED_SINCE=last_modified, **auth(card))
    assert after_change.status_code == 200

    assert client.delete(registration_url(card), **auth(card)).status_code == 200
    assert not AppleRegistration.objects.filter(card=card).exists()
    assert not AppleDevice.objects.filter(device_library_identifier=DEVICE).exists()
    assert serials(client).status_code == 204


def test_last_modified_never_hides_a_change_in_the_same_second(client, world, pass_certificates):
    card = world.card
    buy(card, 1000)  # changed "now": the second has not ended
    first = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}", **auth(card))
    # Another change right after the download, most likely within the same second.
    Card.objects.filter(pk=card.pk).update(pass_updated_at=timezone.now())
    again = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}", HTTP_IF_MODIFIED_SINCE=first["Last-Modified"],
                       **auth(card))
    assert again.status_code == 200


def test_last_modified_steps_back_while_the_second_is_open():
    changed = dt.datetime(2026, 9, 1, 10, 0, 5, 400_000, tzinfo=dt.UTC)
    second = int(changed.timestamp())
    assert webservice.last_modified_seconds(changed, now=changed + dt.timedelta(microseconds=300_000)) == second - 1
    assert webservice.last_modified_seconds(changed, now=changed + dt.timedelta(seconds=1)) == second


def test_tag_safety_window_repeats_recent_serials(client, world, pass_certificates):
    assert register(client, world.card).status_code == 201
    buy(world.card, 1000)
    tag = serials(client).json()["lastUpdated"]
    # The change is less than the window old: the tag stays behind it, so it is listed again.
    assert serials(client, tag).json()["serialNumbers"] == [world.card.number]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer {token}", "ApplePass wrong-token-0123456789", "ApplePass {other}", "applepass {token}"],
)
def test_wrong_or_missing_token_is_401(client, world, pass_certificates, header):
    card = world.card
    other = make_card(world.program)
    extra = {}
    if header:
        extra["HTTP_AUTHORIZATION"] = header.format(
            token=authentication_token(card.number), other=authentication_token(other.number)
        )
    response = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card.number}", **extra)
    assert response.status_code == 401
    assert response.content == b""
    assert client.post(registration_url(card), {"pushToken": PUSH_TOKEN}, content_type="application/json",
                       **extra).status_code == 401
    assert client.delete(registration_url(card), **extra).status_code == 401
    assert not AppleRegistration.objects.exists()


def test_unknown_serial_is_401_and_unknown_pass_type_is_404(client, world, pass_certificates):
    ghost = "9999999999999995"
    response = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{ghost}",
                          HTTP_AUTHORIZATION=f"ApplePass {authentication_token(ghost)}")
    assert response.status_code == 401
    assert client.get(f"/passkit/v1/passes/pass.other.type/{world.card.number}", **auth(world.card)).status_code == 404
    assert client.post(registration_url(world.card, pass_type="pass.other.type"), {"pushToken": PUSH_TOKEN},
                       content_type="application/json", **auth(world.card)).status_code == 404
    assert client.get(f"/passkit/v1/devices/{DEVICE}/registrations/pass.other.type").status_code == 404


def test_register_rejects_a_missing_or_malformed_push_token(client, world, pass_certificates):
    url = registration_url(world.card)
    assert client.post(url, {}, content_type="application/json", **auth(world.card)).status_code == 400
    assert client.post(url, {"pushToken": "../../x"}, content_type="application/json",
                       **auth(world.card)).status_code == 400
    assert client.post(url, "not json", content_type="application/json", **auth(world.card)).status_code == 400
    assert not AppleDevice.objects.exists()


def test_register_updates_a_changed_push_token(client, world, pass_certificates):
    assert register(client, world.card).status_code == 201
    new_token = "ab" * 32
    response = client.post(registration_url(world.card), {"pushToken": new_token}, content_type="application/json",
                           **auth(world.card))
    assert response.status_code == 200
    assert AppleDevice.objects.get().push_token == new_token


def test_serials_since_a_malformed_tag_is_400(client, world, pass_certificates):
    register(client, world.card)
    assert serials(client, "yesterday").status_code == 400


def test_log_endpoint_logs_truncated_entries(client, caplog):
    caplog.set_level(logging.INFO, logger="wallet.passes.apple.webservice")
    response = client.post("/passkit/v1/log", {"logs": ["short message", "x" * 5000]},
                           content_type="application/json")
    assert response.status_code == 200
    messages = [record.getMessage() for record in caplog.records]
    assert any("short message" in message for message in messages)
    assert max(len(message) for message in messages) < 1100
    assert client.post("/passkit/v1/log", "nope", content_type="application/json").status_code == 400


def test_last_modified_header_is_an_http_date(client, world, pass_certificates):
    age(world.card, seconds=10)
    response = client.get(f"/passkit/v1/passes/{PASS_TYPE}/{world.card.number}", **auth(world.card))
    assert response["Last-Modified"] == http_date(int(world.card.pass_updated_at.timestamp()))
