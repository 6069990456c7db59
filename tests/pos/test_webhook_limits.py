"""/hooks/pos/<id>/ caps the body at 2 MB before any signature work: anyone who knows a connection's
URL can post to it, so an oversize body is answered 413 in the error shape without being hashed,
verified or stored, even when it carries a valid signature."""
import base64
import json
import time
import uuid

import pytest

from core.standard_webhooks import sign
from pos_integration.connectors.generic.connector import GenericConnector
from pos_integration.models import WebhookDelivery
from pos_integration.webhooks import MAX_BODY_BYTES
from tests.wallet.helpers import written_rows

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + base64.b64encode(b"generic connector test key 32 b!").decode()


@pytest.fixture
def connection(world, make_connection):
    return make_connection(world, "generic", {"signing_secret": SECRET})


@pytest.fixture
def verifier_calls(monkeypatch):
    """Every call of the connector's signature check, recorded (and still made)."""
    calls = []
    verify = GenericConnector.verify_webhook

    def recording(self, request):
        calls.append(len(request.body))
        return verify(self, request)

    monkeypatch.setattr(GenericConnector, "verify_webhook", recording)
    return calls


def sale_of_size(size: int) -> bytes:
    """A well-formed sale event padded to exactly `size` bytes."""
    event = {"type": "purchase.completed", "timestamp": "2026-11-20T10:00:00Z",
             "data": {"id": "sale-big", "amount": 4200, "currency": "EUR", "note": ""}}
    body = json.dumps(event).encode()
    event["data"]["note"] = "x" * (size - len(body))
    body = json.dumps(event).encode()
    assert len(body) == size
    return body


def post(client, connection, body: bytes, headers: dict):
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return client.generic("POST", f"/hooks/pos/{connection.pk}/", body, content_type="application/json", **extra)


@pytest.mark.parametrize("size", [
    pytest.param(MAX_BODY_BYTES + 1, id="one-byte-over-2MB"),
    pytest.param(3 * 1024 * 1024, id="3MB-beyond-djangos-own-upload-limit"),
])
def test_an_oversize_body_is_refused_with_413_before_any_signature_work(client, connection, verifier_calls, size):
    body = sale_of_size(size)
    headers = sign(SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body)  # valid: only the size is wrong
    before = written_rows()

    response = post(client, connection, body, headers)

    assert response.status_code == 413, response.content[:300]
    assert response.json() == {"error": {"code": "payload_too_large", "message": "The body is too large.",
                                         "fields": {}}}
    assert verifier_calls == []
    assert not WebhookDelivery.objects.exists() and written_rows() == before


def test_a_body_of_exactly_2MB_is_taken_to_the_signature_check(client, connection, verifier_calls):
    body = sale_of_size(MAX_BODY_BYTES)

    response = post(client, connection, body, {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())),
                                               "webhook-signature": "v1,bm90IHRoZSBzaWduYXR1cmU="})

    assert response.status_code == 401 and response.json()["error"]["code"] == "webhook_rejected"
    assert verifier_calls == [MAX_BODY_BYTES]
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["rejected"]


def test_a_flood_of_forged_posts_stores_only_the_hours_allowance_of_rejected_deliveries(
    client, connection, settings, caplog
):
    """Anyone who knows the URL can post; what they can make the database keep is bounded."""
    settings.POS_REJECTED_DELIVERIES_KEPT_PER_HOUR = 3
    forged = sale_of_size(4000)
    answers = [post(client, connection, forged, {"webhook-id": f"msg_{n}", "webhook-timestamp": str(int(time.time())),
                                                 "webhook-signature": "v1,Zm9yZ2Vk"}).status_code for n in range(8)]
    assert answers == [401] * 8
    assert WebhookDelivery.objects.filter(connection=connection, status="rejected").count() == 3
    assert sum("further ones are not kept" in record.getMessage() for record in caplog.records) == 1
    body = sale_of_size(1000)
    signed = post(client, connection, body, sign(SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body))
    assert signed.status_code == 200  # the vendor's real deliveries are not limited
    assert WebhookDelivery.objects.filter(connection=connection).exclude(status="rejected").count() == 1
