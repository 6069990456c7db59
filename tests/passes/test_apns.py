"""APNs client against a local fake that checks what Apple checks: path, ES256 JWT, topic, body."""
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.factories import make_card
from wallet.models import AppleDevice, AppleRegistration
from wallet.passes.apple.apns import PERMANENT, RETRYABLE, SENT, UNREGISTERED, ApnsClient
from wallet.passes.apple.updates import push_card_update

TOPIC = "pass.test.tessera.loyalty"
TEAM, KEY_ID = "TEAMTEST42", "KEYID12345"
TOKEN_A = "aa" * 32
TOKEN_B = "bb" * 32


class FakeApns:
    """Answers like APNs; every request must carry a valid provider token for our key."""

    def __init__(self, public_key, answers=None):
        self.public_key = public_key
        self.answers = answers or {}
        self.requests = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.startswith("/3/device/")
        device_token = request.url.path.removeprefix("/3/device/")
        scheme, _, token = request.headers["authorization"].partition(" ")
        assert scheme == "bearer"
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "ES256" and header["kid"] == KEY_ID
        claims = jwt.decode(token, self.public_key, algorithms=["ES256"], options={"require": ["iss", "iat"]})
        assert claims["iss"] == TEAM
        assert request.headers["apns-topic"] == TOPIC
        assert request.method == "POST"
        assert json.loads(request.content) == {} and request.content == b"{}"
        self.requests.append((device_token, token))
        status, reason = self.answers.get(device_token, (200, None))
        body = json.dumps({"reason": reason}).encode() if reason else b""
        return httpx.Response(status, headers={"apns-id": "11111111-2222-3333-4444-555555555555"}, content=body)


@pytest.fixture
def apns_key(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(pem)
    return key, path


@pytest.fixture
def fake(apns_key):
    return FakeApns(apns_key[0].public_key())


@pytest.fixture
def client(settings, apns_key, fake):
    settings.APNS = {"BASE_URL": "https://api.push.apple.com", "KEY_PATH": str(apns_key[1]), "KEY_ID": KEY_ID,
                     "TEAM_ID": TEAM}
    return ApnsClient.from_settings(transport=httpx.MockTransport(fake))


def test_push_reaches_apns_with_valid_jwt_topic_and_empty_body(client, fake):
    result = client.push_pass_update(TOKEN_A, TOPIC)
    assert result.outcome == SENT and result.ok
    assert fake.requests[0][0] == TOKEN_A


def test_fake_rejects_a_token_signed_with_another_key(settings, apns_key, fake, tmp_path):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    rogue = ApnsClient(base_url="https://api.push.apple.com", key_pem=other, key_id=KEY_ID, team_id=TEAM,
                       transport=httpx.MockTransport(fake))
    with pytest.raises(jwt.InvalidSignatureError):
        rogue.push_pass_update(TOKEN_A, TOPIC)


def test_provider_token_is_cached_and_refreshed_before_an_hour(apns_key, fake):
    now = [time.time() - 3 * 3600]
    client = ApnsClient(base_url="https://api.push.apple.com", key_pem=apns_key[1].read_bytes(), key_id=KEY_ID,
                        team_id=TEAM, transport=httpx.MockTransport(fake), clock=lambda: now[0])
    client.push_pass_update(TOKEN_A, TOPIC)
    now[0] += 49 * 60
    client.push_pass_update(TOKEN_A, TOPIC)
    now[0] += 2 * 60
    client.push_pass_update(TOKEN_A, TOPIC)
    tokens = [token for _, token in fake.requests]
    assert tokens[0] == tokens[1] != tokens[2]
    assert jwt.decode(tokens[2], options={"verify_signature": False})["iat"] == int(now[0])


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [(410, "Unregistered", UNREGISTERED), (429, "TooManyRequests", RETRYABLE), (500, "InternalServerError", RETRYABLE),
     (503, "ServiceUnavailable", RETRYABLE), (400, "BadDeviceToken", PERMANENT),
     (403, "InvalidProviderToken", PERMANENT), (403, "ExpiredProviderToken", RETRYABLE)],
)
def test_responses_are_classified(client, fake, status, reason, outcome):
    fake.answers[TOKEN_A] = (status, reason)
    result = client.push_pass_update(TOKEN_A, TOPIC)
    assert (result.outcome, result.status, result.reason) == (outcome, status, reason)


def test_transport_errors_are_retryable(apns_key):
    def boom(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    client = ApnsClient(base_url="https://api.push.apple.com", key_pem=apns_key[1].read_bytes(), key_id=KEY_ID,
                        team_id=TEAM, transport=httpx.MockTransport(boom))
    assert client.push_pass_update(TOKEN_A, TOPIC).outcome == RETRYABLE


def test_a_malformed_push_token_is_never_sent(client, fake):
    assert client.push_pass_update("../../../2/x", TOPIC).outcome == PERMANENT
    assert fake.requests == []


def test_production_client_speaks_http2_to_the_configured_host(settings, apns_key):
    settings.APNS = {"BASE_URL": "https://api.push.apple.com", "KEY_PATH": str(apns_key[1]), "KEY_ID": KEY_ID,
                     "TEAM_ID": TEAM}
    client = ApnsClient.from_settings()
    assert str(client._http.base_url) == "https://api.push.apple.com"
    assert client._http._transport._pool._http2 is True
    client.close()


def _register(card, device_id, push_token):
    device = AppleDevice.objects.create(device_library_identifier=device_id, push_token=push_token)
    return AppleRegistration.objects.create(device=device, card=card, pass_type_identifier=TOPIC)


def test_push_card_update_pushes_every_device_and_drops_410(world, client, fake):
    _register(world.card, "device-a", TOKEN_A)
    _register(world.card, "device-b", TOKEN_B)
    other_card = make_card(world.program)
    _register(other_card, "device-c", "cc" * 32)
    fake.answers[TOKEN_B] = (410, "Unregistered")

    summary = push_card_update(world.card.pk, client=client)

    assert sorted(token for token, _ in fake.requests) == [TOKEN_A, TOKEN_B]
    assert (summary.sent, summary.removed, summary.needs_retry) == (1, 1, False)
    assert list(AppleRegistration.objects.filter(card=world.card).values_list("device__device_library_identifier",
                                                                               flat=True)) == ["device-a"]
    assert not AppleDevice.objects.filter(device_library_identifier="device-b").exists()
    assert AppleRegistration.objects.filter(card=other_card).exists()


def test_push_card_update_reports_500_as_retryable_and_keeps_registration(world, client, fake):
    _register(world.card, "device-a", TOKEN_A)
    fake.answers[TOKEN_A] = (500, "InternalServerError")
    summary = push_card_update(world.card.pk, client=client)
    assert summary.needs_retry and summary.retryable == ["device-a"]
    assert AppleRegistration.objects.filter(card=world.card).count() == 1


def test_410_for_a_token_the_device_has_since_replaced_keeps_the_registration(world, client, fake):
    registration = _register(world.card, "device-a", TOKEN_A)

    def answer_and_reregister(request):
        AppleDevice.objects.filter(pk=registration.device_id).update(push_token=TOKEN_B)
        return httpx.Response(410, content=b'{"reason": "Unregistered"}')

    client._http._transport = httpx.MockTransport(answer_and_reregister)
    assert push_card_update(world.card.pk, client=client).removed == 0
    assert AppleRegistration.objects.filter(pk=registration.pk).exists()
