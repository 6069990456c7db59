"""Pass update pushes forget the devices APNs says it will never deliver to (410 Unregistered, 400
BadDeviceToken), so they are not pushed on every later change; a 400 DeviceTokenNotForTopic is our pass
type id setting being wrong, not the device, and keeps the registration."""
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.factories import make_card
from tests.passes.test_apns import KEY_ID, TEAM, TOKEN_A, TOKEN_B, TOPIC, FakeApns
from wallet.models import AppleDevice, AppleRegistration
from wallet.passes.apple.apns import ApnsClient
from wallet.passes.apple.updates import push_card_update


@pytest.fixture
def apns():
    key = ec.generate_private_key(ec.SECP256R1())
    fake = FakeApns(key.public_key())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fake.client = ApnsClient(base_url="https://api.push.apple.com", key_pem=pem, key_id=KEY_ID, team_id=TEAM,
                             transport=httpx.MockTransport(fake))
    yield fake
    fake.client.close()


def _register(card, device_id, push_token):
    device, _ = AppleDevice.objects.get_or_create(device_library_identifier=device_id,
                                                  defaults={"push_token": push_token})
    return AppleRegistration.objects.create(device=device, card=card, pass_type_identifier=TOPIC)


def _push(card, apns):
    """One pass update push; returns its summary and the push tokens APNs was asked to reach."""
    apns.requests.clear()
    summary = push_card_update(card.pk, client=apns.client)
    return summary, sorted(token for token, _ in apns.requests)


@pytest.mark.parametrize("answer", [(400, "BadDeviceToken"), (410, "Unregistered")], ids=["400-BadDeviceToken",
                                                                                         "410-Unregistered"])
def test_a_dead_token_loses_its_registration_and_is_not_pushed_again(world, apns, answer):
    _register(world.card, "device-a", TOKEN_A)
    _register(world.card, "device-b", TOKEN_B)
    apns.answers[TOKEN_B] = answer

    summary, pushed = _push(world.card, apns)
    assert pushed == [TOKEN_A, TOKEN_B]
    assert (summary.sent, summary.removed, summary.failed, summary.needs_retry) == (1, 1, [], False)
    assert not AppleDevice.objects.filter(device_library_identifier="device-b").exists()

    summary, pushed = _push(world.card, apns)
    assert pushed == [TOKEN_A]
    assert (summary.sent, summary.removed) == (1, 0)


def test_a_bad_device_token_keeps_the_devices_registrations_for_other_cards_until_they_are_pushed(world, apns):
    other_card = make_card(world.program)
    _register(world.card, "device-b", TOKEN_B)
    _register(other_card, "device-b", TOKEN_B)
    apns.answers[TOKEN_B] = (400, "BadDeviceToken")

    assert _push(world.card, apns)[0].removed == 1
    assert list(AppleRegistration.objects.values_list("card_id", flat=True)) == [other_card.pk]
    assert _push(other_card, apns)[0].removed == 1
    assert not AppleDevice.objects.exists()


def test_device_token_not_for_topic_keeps_the_registration_and_reports_the_failure(world, apns):
    registration = _register(world.card, "device-b", TOKEN_B)
    apns.answers[TOKEN_B] = (400, "DeviceTokenNotForTopic")  # our pass type id / key is wrong, not the phone

    summary, pushed = _push(world.card, apns)
    assert pushed == [TOKEN_B]
    assert (summary.removed, summary.failed) == (0, ["device-b"])
    assert AppleRegistration.objects.filter(pk=registration.pk).exists()

    apns.answers.clear()  # the setting is fixed: the same registration gets the next update
    summary, pushed = _push(world.card, apns)
    assert (pushed, summary.sent) == ([TOKEN_B], 1)


def test_bad_device_token_for_a_token_the_device_has_since_replaced_keeps_the_registration(world, apns):
    registration = _register(world.card, "device-b", TOKEN_B)

    def answer_and_reregister(request):
        AppleDevice.objects.filter(pk=registration.device_id).update(push_token=TOKEN_A)
        return httpx.Response(400, content=b'{"reason": "BadDeviceToken"}')

    apns.client._http._transport = httpx.MockTransport(answer_and_reregister)
    assert push_card_update(world.card.pk, client=apns.client).removed == 0
    assert AppleRegistration.objects.filter(pk=registration.pk).exists()
