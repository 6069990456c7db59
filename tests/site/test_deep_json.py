"""Deeply nested JSON (100,000 arrays or objects inside each other, 200 kB to 500 kB: under every size
cap) posted to the webhook URLs (POS, CRM, Stripe billing) and to JSON API endpoints.

Python's json module gives up on such nesting with a RecursionError, which no parser's "invalid JSON"
branch expects: it must still be answered as a bad request (4xx), never a 500, and the webhook's
delivery must fail for good as bad input rather than be retried as a connector bug.
"""
import logging

import pytest
from django.test import Client

from pos_integration.models import WebhookDelivery
from pos_integration.processing import MAX_AUTOMATIC_ATTEMPTS
from tests.api.conftest import client_for
from tests.billing.helpers import SECRET_KEY, WEBHOOK_SECRET, stripe_signature
from tests.crm.test_hubspot import connect as connect_hubspot
from tests.crm.test_hubspot import fake, hook_url, hubspot_installed, v3_headers  # noqa: F401 - fixtures
from tests.pos.conftest import eager_celery, make_connection, post_webhook  # noqa: F401 - fixtures
from tests.pos.test_webhook_fuzz import GENERIC_SECRET, sign_generic
from wallet.models import CommunicationPreference, LedgerEntry

pytestmark = pytest.mark.django_db

DEPTH = 100_000
DEEP_ARRAYS = b"[" * DEPTH + b"]" * DEPTH
DEEP_OBJECTS = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
BODIES = pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])


def errors_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@BODIES
def test_a_deeply_nested_signed_pos_webhook_is_kept_and_failed_for_good_as_bad_input(
        body, world, make_connection, post_webhook, caplog):  # noqa: F811 - the imported fixtures
    connection = make_connection(world, "generic", {"signing_secret": GENERIC_SECRET})
    entries = LedgerEntry.objects.count()

    response = post_webhook(connection, body, sign_generic(None, body, ""))

    assert response.status_code == 200, response.content[:300]  # verified: the vendor must not resend it
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == WebhookDelivery.Status.FAILED, delivery.error
    assert delivery.attempts >= MAX_AUTOMATIC_ATTEMPTS, delivery.error  # not retried
    assert LedgerEntry.objects.count() == entries
    assert not errors_logged(caplog)  # not a "connector bug"


@BODIES
def test_a_deeply_nested_signed_crm_webhook_is_a_clean_4xx(body, world, fake, caplog):  # noqa: F811 - fixture
    connection = connect_hubspot(world, fake)
    consents = list(CommunicationPreference.objects.values_list("pk", "channel", "is_opted_in"))
    client = Client(raise_request_exception=False)
    headers = {f"HTTP_{name.upper().replace('-', '_')}": value
               for name, value in v3_headers(body, hook_url(connection)).items()}

    response = client.generic("POST", f"/hooks/crm/{connection.pk}/", body, content_type="application/json",
                              **headers)

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert list(CommunicationPreference.objects.values_list("pk", "channel", "is_opted_in")) == consents
    assert not errors_logged(caplog)


@BODIES
def test_a_deeply_nested_signed_stripe_billing_webhook_is_a_clean_4xx(body, settings, caplog):
    settings.STRIPE_BILLING = {"SECRET_KEY": SECRET_KEY, "WEBHOOK_SECRET": WEBHOOK_SECRET,
                               "API_BASE": "http://127.0.0.1:9"}  # never called: the body is refused first
    settings.TESSERA_BILLING_ENABLED = True
    client = Client(raise_request_exception=False)

    response = client.post("/hooks/stripe/", body, content_type="application/json",
                           headers={"Stripe-Signature": stripe_signature(body)})

    assert response.status_code in (400, 413), (response.status_code, response.content[:300])  # 413: its cap
    assert not errors_logged(caplog)


@BODIES
@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/preferences/"])
def test_a_deeply_nested_api_request_is_a_clean_400(body, path, world, caplog):
    client = client_for(world.customer.user)
    client.raise_request_exception = False

    response = client.generic("PATCH" if "preferences" in path else "POST", path, body,
                              content_type="application/json")

    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response.json()["error"]["code"] == "malformed_request"
    assert not errors_logged(caplog)
