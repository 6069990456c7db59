"""The wallet-pass channel: the message becomes the card's pass message; Apple devices get the pass
update push through the existing path (the loopback APNs fake of tests/passes), and a saved Google pass
gets the message added with a notification (the Google Wallet fake of tests/passes, plus addMessage)."""
import threading
from urllib.parse import unquote

import pytest

from config.celery import app as celery_app
from core.errors import ValidationFailed
from engagement.channels.base import ChannelUnavailable, OutgoingMessage, SendFailed
from engagement.channels.wallet_pass import NOTIFY, TEXT, WalletPassChannel
from engagement.optout import opt_out_url
from tests.factories import make_card, make_customer, make_program
from tests.passes.conftest import EMAIL, ISSUER, rsa_keys, service_account_file  # noqa: F401 - fixtures
from tests.passes.google_fake import API_PREFIX, FakeGoogleWallet
from tests.passes.test_pass_updates import PUSH_TOKEN, fake_apns, register  # noqa: F401 - fixture
from wallet.models import Card
from wallet.passes.apple.pkpass import build_pass_json
from wallet.passes.google.client import GoogleWalletClient
from wallet.passes.google.objects import object_id
from wallet.services.pass_messages import set_pass_message

NOTIFICATIONS_PER_DAY = 3


class FakeGoogleWalletWithMessages(FakeGoogleWallet):
    """The tests/passes fake plus `POST /loyaltyObject/{id}/addMessage` (reference 3.1 and 3.5): the
    message is appended to the object's `messages`; a TEXT_AND_NOTIFY beyond 3 per pass is refused with
    Google's QuotaExceededException (the HTTP status of that refusal is not documented: 429 here)."""

    def __init__(self, **kwargs):
        self.notified: dict[str, int] = {}
        super().__init__(**kwargs)
        # shut down in milliseconds rather than the default half-second poll
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def _handler_class(self):
        base, fake = super()._handler_class(), self

        class Handler(base):
            def _api(self, body):
                rest = self.path[len(API_PREFIX) + 1:].split("?", 1)[0]
                kind, _, tail = rest.partition("/")
                resource_id, _, verb = tail.partition("/")
                if not (kind == "loyaltyObject" and verb == "addMessage" and self.command == "POST"):
                    return super()._api(body)
                resource_id = unquote(resource_id)
                message = (body or {}).get("message")
                with fake.lock:
                    if resource_id not in fake.objects:
                        return self._error(404, f"Resource {resource_id} not found")
                    if not isinstance(message, dict) or message.get("messageType") not in (NOTIFY, TEXT):
                        return self._error(400, "Invalid message")
                    if message["messageType"] == NOTIFY:
                        if fake.notified.get(resource_id, 0) >= NOTIFICATIONS_PER_DAY:
                            return self._error(429, "QuotaExceededException: notification limit reached")
                        fake.notified[resource_id] = fake.notified.get(resource_id, 0) + 1
                    fake.objects[resource_id].setdefault("messages", []).append(message)
                    return self._send(200, {"resource": fake.objects[resource_id]})

        return Handler


@pytest.fixture
def google(settings, rsa_keys, service_account_file):  # noqa: F811 - fixtures imported above
    fake = FakeGoogleWalletWithMessages(client_email=EMAIL, public_key_pem=rsa_keys[1]).start()
    settings.GOOGLE_WALLET = {"ISSUER_ID": ISSUER, "SERVICE_ACCOUNT_FILE": str(service_account_file),
                              "API_BASE_URL": fake.api_base_url, "TOKEN_URL": fake.token_url, "ORIGINS": []}
    settings.APNS = {**settings.APNS, "KEY_PATH": ""}
    yield fake
    fake.stop()


@pytest.fixture
def eager_tasks():
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = eager


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"


def in_google_wallet(card, fake, *, saved=True) -> dict:
    """Insert the card's class and object as the pass pages do; `saved`: a user saved it (hasUsers)."""
    with GoogleWalletClient.from_settings() as client:
        client.upsert_class(card.program)
        client.upsert_object(card)
    stored = fake.objects[object_id(card)]
    if saved:
        stored["hasUsers"] = True
    return stored


def outgoing(world, card=None) -> OutgoingMessage:
    card = card or world.card
    return OutgoingMessage(
        merchant_id=world.merchant.pk, merchant_name=world.merchant.name, customer_id=world.customer.pk,
        card_id=card.pk, channel="wallet_pass", subject="Double points all week",
        body="Every coffee earns double points until Sunday.",
        opt_out_url=opt_out_url(world.customer.pk, world.merchant.pk, "wallet_pass"), offer_id=41,
    )


def test_a_new_pass_message_reaches_apple_devices_after_commit(world, settings, fake_apns,  # noqa: F811
                                                               django_capture_on_commit_callbacks):
    register(world.card, settings)
    before = Card.objects.get(pk=world.card.pk).pass_updated_at

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        set_pass_message(world.card, "Double points all week")
    assert fake_apns.pushes == [], "nothing is pushed before the message commits"
    for callback in callbacks:
        callback()

    card = Card.objects.get(pk=world.card.pk)
    assert card.pass_message == "Double points all week" and card.pass_updated_at > before
    [(path, headers, body)] = fake_apns.pushes
    assert path == f"/3/device/{PUSH_TOKEN}" and body == {}
    message_field = build_pass_json(card)["storeCard"]["backFields"][0]
    assert (message_field["value"], message_field["changeMessage"]) == ("Double points all week", "%@")


def test_the_message_it_already_shows_pushes_nothing(world, settings, fake_apns,  # noqa: F811
                                                     django_capture_on_commit_callbacks):
    register(world.card, settings)
    set_pass_message(world.card, "Double points all week")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        set_pass_message(world.card, "Double points all week")
    assert callbacks == []


def test_a_pass_message_longer_than_200_characters_is_refused_and_nothing_changes(world):
    with pytest.raises(ValidationFailed) as refusal:
        set_pass_message(world.card, "x" * 201)
    assert "pass_message" in refusal.value.fields
    assert Card.objects.get(pk=world.card.pk).pass_message == ""


def test_the_channel_puts_the_message_on_an_apple_pass_and_pushes_it(world, settings, fake_apns,  # noqa: F811
                                                                     django_capture_on_commit_callbacks):
    register(world.card, settings)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = WalletPassChannel().send(outgoing(world), world.customer)

    assert Card.objects.get(pk=world.card.pk).pass_message == "Every coffee earns double points until Sunday."
    assert len(fake_apns.pushes) == 1
    assert outcome.provider_message_id == "apple"


def test_a_saved_google_pass_gets_the_message_with_a_notification_and_the_object_patched(
    world, google, eager_tasks, django_capture_on_commit_callbacks
):
    stored = in_google_wallet(world.card, google)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = WalletPassChannel().send(outgoing(world), world.customer)

    [added] = stored["messages"]
    assert (added["header"], added["body"], added["messageType"]) == (
        "Double points all week", "Every coffee earns double points until Sunday.", NOTIFY)
    assert {"header": "Message", "body": "Every coffee earns double points until Sunday.",
            "id": "pass_message"} in stored["textModulesData"]  # the pass update task's PATCH
    assert outcome.provider_message_id == f"google:{NOTIFY}"


def test_past_googles_daily_notification_quota_the_message_is_added_as_plain_text(world, google):
    stored = in_google_wallet(world.card, google)
    google.notified[object_id(world.card)] = NOTIFICATIONS_PER_DAY

    WalletPassChannel().send(outgoing(world), world.customer)

    assert [m["messageType"] for m in stored["messages"]] == [TEXT]


def test_a_card_whose_pass_is_in_no_wallet_fails_permanently_and_keeps_its_message(world, google):
    in_google_wallet(world.card, google, saved=False)

    with pytest.raises(SendFailed) as failure:
        WalletPassChannel().send(outgoing(world), world.customer)

    assert failure.value.permanent
    assert Card.objects.get(pk=world.card.pk).pass_message == ""
    assert "messages" not in google.objects[object_id(world.card)]


def test_another_customers_card_is_refused(world, google):
    stranger_card = make_card(world.program, make_customer())
    in_google_wallet(stranger_card, google)

    with pytest.raises(SendFailed):
        WalletPassChannel().send(outgoing(world, stranger_card), world.customer)
    assert Card.objects.get(pk=stranger_card.pk).pass_message == ""


def test_has_address_means_an_apple_registration_or_a_saved_google_pass(world, settings, google):
    channel = WalletPassChannel()
    assert channel.has_address(world.customer) is False  # no Google object at all

    in_google_wallet(world.card, google, saved=False)
    assert channel.has_address(world.customer) is False  # inserted, never saved by anyone

    google.objects[object_id(world.card)]["hasUsers"] = True
    assert channel.has_address(world.customer) is True
    assert channel.has_address(world.customer, card=world.card) is True
    second_card = make_card(make_program(world.merchant), world.customer)
    assert channel.has_address(world.customer, card=second_card) is False  # that card's pass is nowhere


def test_an_apple_registration_is_an_address_without_asking_google(world, settings, google):
    register(world.card, settings)
    google.fail(500, times=5)
    assert WalletPassChannel().has_address(world.customer) is True
    assert not any(path.startswith(API_PREFIX) for _, path, _ in google.requests)


def test_when_google_cannot_say_the_send_decides(world, google):
    google.fail(503, times=5)
    assert WalletPassChannel().has_address(world.customer) is True
    with pytest.raises(SendFailed) as failure:
        WalletPassChannel().send(outgoing(world), world.customer)
    assert failure.value.permanent is False


def test_without_apple_pushes_or_google_wallet_the_channel_is_unavailable(world, settings):
    settings.APNS = {**settings.APNS, "KEY_PATH": ""}
    settings.GOOGLE_WALLET = {**settings.GOOGLE_WALLET, "SERVICE_ACCOUNT_FILE": ""}
    with pytest.raises(ChannelUnavailable):
        WalletPassChannel().send(outgoing(world), world.customer)
