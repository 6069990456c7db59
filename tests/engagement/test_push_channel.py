"""The push channel against local fakes of FCM (HTTP v1 + Google's token endpoint) and APNs: what each
phone's provider receives, dead tokens switched off, one good phone is enough, and an unconfigured site."""
import http.server
import json
import threading

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engagement.channels.base import ChannelUnavailable, OutgoingMessage, SendFailed
from engagement.channels.fcm import RETRYABLE, fcm_client
from engagement.channels.push import PushChannel
from engagement.models import PushDevice
from engagement.optout import opt_out_url
from engagement.push_devices import deactivate_push_device, register_push_device
from tests.engagement.fcm_fake import FakeFcm
from tests.factories import make_customer
from tests.passes.conftest import rsa_pem_pair

PROJECT = "tessera-wallet-test"
EMAIL = "fcm-sender@tessera-wallet-test.iam.gserviceaccount.com"
BUNDLE_ID = "com.tessera.wallet"
TEAM, KEY_ID = "TEAMTEST42", "KEYID12345"
ANDROID = "dQw4w9WgXcQ:APA91bH" + "x" * 140
ANDROID_2 = "eRk5w9WgXcQ:APA91bH" + "y" * 140
IPHONE = "ab" * 32


class FakeApnsAlerts(http.server.ThreadingHTTPServer):
    """APNs on loopback: records every push; answers 200, or (status, reason) set per device token."""

    def __init__(self):
        self.pushes = []
        self.answers = {}
        super().__init__(("127.0.0.1", 0), self._handler())

    def _handler(server):  # noqa: N805 - the handler closes over the server
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                token = self.path.removeprefix("/3/device/")
                server.pushes.append((self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                status, reason = server.answers.get(token, (200, None))
                content = json.dumps({"reason": reason}).encode() if reason else b""
                self.send_response(status)
                self.send_header("apns-id", "00000000-0000-0000-0000-00000000000" + str(len(server.pushes) % 10))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture(scope="module")
def fcm_keys():
    return rsa_pem_pair()


@pytest.fixture
def fcm(settings, tmp_path, fcm_keys):
    fake = FakeFcm(project_id=PROJECT, client_email=EMAIL, public_key_pem=fcm_keys[1]).start()
    account = tmp_path / "fcm-service-account.json"
    account.write_text(json.dumps({"type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
                                   "private_key": fcm_keys[0], "client_email": EMAIL, "token_uri": fake.token_url}))
    settings.FCM_PROJECT_ID = PROJECT
    settings.FCM_SERVICE_ACCOUNT_FILE = str(account)
    settings.FCM_API_BASE = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def apns_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def apns(settings, tmp_path, apns_key):
    server = FakeApnsAlerts()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    key_path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key_path.write_bytes(apns_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    settings.APNS = {"BASE_URL": f"http://127.0.0.1:{server.server_address[1]}", "KEY_PATH": str(key_path),
                     "KEY_ID": KEY_ID, "TEAM_ID": TEAM}
    settings.APNS_APP_BUNDLE_ID = BUNDLE_ID
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def unconfigured(settings):
    settings.FCM_PROJECT_ID = ""
    settings.FCM_SERVICE_ACCOUNT_FILE = ""
    settings.APNS = {**settings.APNS, "KEY_PATH": ""}
    settings.APNS_APP_BUNDLE_ID = ""


@pytest.fixture
def member(world, settings):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    return world.customer


def outgoing(world) -> OutgoingMessage:
    return OutgoingMessage(
        merchant_id=world.merchant.pk, merchant_name=world.merchant.name, customer_id=world.customer.pk,
        card_id=world.card.pk, channel="push", subject="Double points all week",
        body="Every coffee earns double points until Sunday.",
        opt_out_url=opt_out_url(world.customer.pk, world.merchant.pk, "push"), offer_id=41,
    )


def phone(customer, platform, token) -> PushDevice:
    return register_push_device(customer, platform, token)[0]


def active_tokens(customer):
    return set(PushDevice.objects.filter(customer=customer, is_active=True).values_list("token", flat=True))


def test_an_android_phone_gets_the_title_and_text_and_the_opt_out_link_only_in_the_data(world, member, fcm):
    phone(member, "fcm", ANDROID)
    message = outgoing(world)

    outcome = PushChannel().send(message, member)

    [sent] = fcm.sent
    assert sent["token"] == ANDROID
    assert sent["notification"] == {"title": "Double points all week",
                                    "body": "Every coffee earns double points until Sunday."}
    assert sent["data"] == {"merchant_id": str(world.merchant.pk), "card_id": str(world.card.pk),
                            "offer_id": "41", "opt_out_url": message.opt_out_url}
    assert message.opt_out_url not in json.dumps(sent["notification"])
    assert sent["authorization"].removeprefix("Bearer ") in fcm.tokens  # an access token the OAuth fake issued
    assert outcome.provider_message_id == f"projects/{PROJECT}/messages/0:1%fake"


def test_the_access_token_is_fetched_once_for_many_messages_and_replaced_when_refused(world, member, fcm):
    phone(member, "fcm", ANDROID)
    PushChannel().send(outgoing(world), member)
    PushChannel().send(outgoing(world), member)
    assert fcm.token_requests == 1 and len(fcm.sent) == 2

    fcm.revoke_access_tokens()  # the API now answers 401 to the cached token
    PushChannel().send(outgoing(world), member)

    assert fcm.token_requests == 2 and len(fcm.sent) == 3
    assert fcm.sent[2]["authorization"] != fcm.sent[0]["authorization"]


def test_fcm_throttling_is_retryable_with_its_retry_after(world, member, fcm):
    fcm.fail(429, retry_after="30")
    result = fcm_client().send(ANDROID, title="t", body="b")
    assert (result.outcome, result.status, result.retry_after) == (RETRYABLE, 429, 30.0)


def test_an_iphone_gets_an_alert_for_the_wallet_app_signed_with_the_team_key(world, member, apns, apns_key):
    phone(member, "apns", IPHONE.upper())  # tokens are stored in lower case
    message = outgoing(world)

    PushChannel().send(message, member)

    [(path, headers, payload)] = apns.pushes
    assert path == f"/3/device/{IPHONE}"
    assert (headers["apns-push-type"], headers["apns-topic"], headers["apns-priority"]) == ("alert", BUNDLE_ID, "10")
    scheme, _, provider_token = headers["authorization"].partition(" ")
    assert scheme == "bearer" and jwt.get_unverified_header(provider_token)["kid"] == KEY_ID
    assert jwt.decode(provider_token, apns_key.public_key(), algorithms=["ES256"])["iss"] == TEAM
    assert payload == {
        "aps": {"alert": {"title": "Double points all week", "body": "Every coffee earns double points until Sunday."}},
        "offer_id": "41", "merchant_id": str(world.merchant.pk), "card_id": str(world.card.pk),
        "opt_out_url": message.opt_out_url,
    }


def test_one_good_phone_of_two_is_enough_and_the_unregistered_one_is_switched_off(world, member, fcm, apns):
    phone(member, "fcm", ANDROID)
    phone(member, "apns", IPHONE)
    fcm.unregistered.add(ANDROID)

    PushChannel().send(outgoing(world), member)

    assert len(apns.pushes) == 1
    assert active_tokens(member) == {IPHONE}


def test_apns_410_switches_the_iphone_off(world, member, fcm, apns):
    phone(member, "fcm", ANDROID)
    phone(member, "apns", IPHONE)
    apns.answers[IPHONE] = (410, "Unregistered")

    PushChannel().send(outgoing(world), member)

    assert len(fcm.sent) == 1
    assert active_tokens(member) == {ANDROID}


def test_when_every_phone_is_gone_the_failure_is_permanent_and_no_address_is_left(world, member, fcm, apns):
    phone(member, "fcm", ANDROID)
    phone(member, "fcm", ANDROID_2)
    phone(member, "apns", IPHONE)
    fcm.unregistered.add(ANDROID)
    fcm.invalid.add(ANDROID_2)  # 400 INVALID_ARGUMENT about the token itself
    apns.answers[IPHONE] = (410, "Unregistered")

    with pytest.raises(SendFailed) as failure:
        PushChannel().send(outgoing(world), member)

    assert failure.value.permanent
    assert active_tokens(member) == set()
    assert PushChannel().has_address(member) is False


def test_a_provider_outage_is_temporary_and_keeps_the_phone(world, member, fcm):
    phone(member, "fcm", ANDROID)
    fcm.fail(503)

    with pytest.raises(SendFailed) as failure:
        PushChannel().send(outgoing(world), member)

    assert failure.value.permanent is False
    assert active_tokens(member) == {ANDROID}


def test_a_refused_message_is_permanent_but_does_not_blame_the_phone(world, member, fcm):
    phone(member, "fcm", ANDROID)
    fcm.fail(400)  # INVALID_ARGUMENT without an FcmError detail: the payload, not the token

    with pytest.raises(SendFailed) as failure:
        PushChannel().send(outgoing(world), member)

    assert failure.value.permanent
    assert active_tokens(member) == {ANDROID}


def test_without_fcm_or_apns_the_channel_is_unavailable(world, member, unconfigured):
    phone(member, "fcm", ANDROID)
    with pytest.raises(ChannelUnavailable):
        PushChannel().send(outgoing(world), member)


def test_a_platform_not_configured_is_skipped(world, member, settings, fcm):
    settings.APNS = {**settings.APNS, "KEY_PATH": ""}
    phone(member, "apns", IPHONE)
    with pytest.raises(ChannelUnavailable):  # an iPhone only, and no APNs here
        PushChannel().send(outgoing(world), member)

    phone(member, "fcm", ANDROID)
    PushChannel().send(outgoing(world), member)

    assert [sent["token"] for sent in fcm.sent] == [ANDROID]
    assert active_tokens(member) == {ANDROID, IPHONE}


def test_has_address_means_an_active_phone_of_this_customer(world, member):
    other = make_customer()
    phone(other, "fcm", ANDROID)
    assert PushChannel().has_address(member) is False

    device = phone(member, "apns", IPHONE)
    assert PushChannel().has_address(member) is True
    deactivate_push_device(device)
    assert PushChannel().has_address(member) is False


def test_a_token_the_phone_registered_again_meanwhile_is_not_switched_off(world, member):
    stale = phone(member, "fcm", ANDROID)
    phone(member, "fcm", ANDROID)  # the app re-registered while a send was in flight

    assert deactivate_push_device(stale) is False
    assert active_tokens(member) == {ANDROID}


def test_an_unreadable_service_account_fails_the_send_without_blaming_the_phone(world, member, settings, tmp_path):
    settings.FCM_PROJECT_ID = PROJECT
    settings.FCM_SERVICE_ACCOUNT_FILE = str(tmp_path / "missing.json")
    phone(member, "fcm", ANDROID)

    with pytest.raises(SendFailed) as failure:
        PushChannel().send(outgoing(world), member)

    assert failure.value.permanent and "configuration" in str(failure.value)
    assert active_tokens(member) == {ANDROID}
