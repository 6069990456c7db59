"""A balance change reaches the wallets: on commit, registered Apple devices get a push."""
import http.server
import json
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from config.celery import app as celery_app
from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.models import AppleDevice, AppleRegistration

pytestmark = pytest.mark.django_db

PUSH_TOKEN = "a" * 64


class FakeApnsServer(http.server.ThreadingHTTPServer):
    """APNs stand-in on loopback: records each push and answers 200."""

    def __init__(self):
        self.pushes = []
        super().__init__(("127.0.0.1", 0), self._handler())

    def _handler(server):  # noqa: N805 - the handler closes over the server
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.pushes.append((self.path, dict(self.headers), json.loads(body or b"null")))
                self.send_response(200)
                self.send_header("apns-id", "00000000-0000-0000-0000-000000000001")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def fake_apns(settings, tmp_path):
    server = FakeApnsServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = tmp_path / "AuthKey_TEST.p8"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    settings.APNS = {
        "BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "KEY_PATH": str(key_path),
        "KEY_ID": "KEYID12345",
        "TEAM_ID": "TEAMID1234",
    }
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield server
    celery_app.conf.task_always_eager = eager
    server.shutdown()


def register(card, settings):
    device = AppleDevice.objects.create(device_library_identifier="device-1", push_token=PUSH_TOKEN)
    AppleRegistration.objects.create(
        device=device, card=card, pass_type_identifier=settings.APPLE_WALLET["PASS_TYPE_IDENTIFIER"]
    )


def test_a_purchase_pushes_every_registered_device_after_commit(
    fake_apns, settings, django_capture_on_commit_callbacks
):
    world = build_world()
    register(world.card, settings)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        buy(world.card, 2500)
    assert fake_apns.pushes == [], "nothing is pushed before the purchase commits"
    for callback in callbacks:
        callback()
    [(path, headers, body)] = fake_apns.pushes
    assert path == f"/3/device/{PUSH_TOKEN}"
    assert headers["apns-topic"] == settings.APPLE_WALLET["PASS_TYPE_IDENTIFIER"]
    assert headers["authorization"].startswith("bearer ") and body == {}


def test_without_wallet_configuration_nothing_is_scheduled(settings, django_capture_on_commit_callbacks):
    settings.APNS = {**settings.APNS, "KEY_PATH": ""}
    settings.GOOGLE_WALLET = {**settings.GOOGLE_WALLET, "SERVICE_ACCOUNT_FILE": ""}
    settings.TESSERA_OUTBOX_LISTENERS = []  # (the CRM's after-commit hook is another matter)
    world = build_world()
    with django_capture_on_commit_callbacks() as callbacks:
        buy(world.card, 2500)
    assert callbacks == []


def test_a_purchase_updates_the_google_wallet_object(google_settings, fake, django_capture_on_commit_callbacks):
    """Through the same task, against the local Google Wallet fake (fixtures from test_google_wallet)."""
    google_settings.APNS = {**google_settings.APNS, "KEY_PATH": ""}
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        world = build_world()
        with django_capture_on_commit_callbacks(execute=True):
            result = buy(world.card, 4200)
    finally:
        celery_app.conf.task_always_eager = eager
    [stored] = [obj for oid, obj in fake.objects.items() if oid.endswith(world.card.number)]
    assert stored["loyaltyPoints"]["balance"] == {"int": result.balance}
