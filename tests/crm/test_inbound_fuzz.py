"""Fuzzing every CRM connector that takes inbound webhooks (consent coming back from the CRM).

For each connector in the registry with `supports_inbound`, Hypothesis sends random JSON, the
documented payload cut short at any byte, the same payload with known fields replaced by values of the
wrong type (or removed), and random bytes, each correctly signed: `verify_inbound` accepts or raises
`InboundRejected` (401), and `parse_inbound` returns `ConsentChange`s or raises `CrmError` (answered 503
so the CRM resends), never another exception. Then a few such bodies go through the real URL: never an
unexpected 5xx (503 only when the CRM's API refused the lookup), and a body that yields no change leaves every
consent as it was.
The CRM's API (HubSpot's contact lookup) is the local fake of tests/crm/hubspot_fake.py.
"""
import json

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings

from crm_sync import registry
from crm_sync.base import CrmError, InboundRejected
from crm_sync.connections import connector_for
from crm_sync.types import ConsentChange, InboundRequest
from tests.crm.hubspot_fake import FakeHubSpot
from tests.crm.test_hubspot import HUB_ID, PUBLIC_URL, TOKEN, connect, hook_url, property_change, v3_headers
from tests.pos.test_webhook_fuzz import bodies
from wallet.models import CommunicationPreference

pytestmark = pytest.mark.django_db

EXAMPLES = 50
SIGNED_THROUGH_URL = 8


def hubspot_documents(contact_id: str) -> list:
    """HubSpot's documented property-change deliveries: a list of events, for the properties we read."""
    return [
        [property_change(contact_id), property_change(contact_id, "tessera_email_opt_in", "true", occurredAt=2)],
        [{**property_change(contact_id, "hs_email_optout", "true"), "subscriptionType": "object.propertyChange",
          "objectTypeId": "0-1"}],
    ]


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.TESSERA_PUBLIC_URL = PUBLIC_URL
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def hubspot(world):
    server = FakeHubSpot(access_token=TOKEN, hub_id=HUB_ID).start()
    server.contact_id = server.add_contact(world.customer.user.email)
    yield server
    server.stop()


def signed_request(connection, body: bytes) -> InboundRequest:
    headers = {name.lower(): value for name, value in v3_headers(body, hook_url(connection)).items()}
    return InboundRequest(body=body, headers=headers, method="POST", url=hook_url(connection),
                          received_at=timezone.now())


def test_every_connector_that_takes_webhooks_is_fuzzed():
    assert {key for key, cls in registry.connectors().items() if cls.supports_inbound} == {"hubspot"}, (
        "a new inbound connector needs a fuzz here"
    )


def test_hubspot_inbound_answers_any_signed_body_with_consent_changes_or_a_crm_error(world, hubspot):
    connection = connect(world, hubspot)
    connector = connector_for(connection)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies(hubspot_documents(hubspot.contact_id)))
    def run(body):
        request = signed_request(connection, body)
        try:
            connector.verify_inbound(request)
        except InboundRejected:
            return
        try:
            changes = connector.parse_inbound(request)
        except CrmError:
            return
        assert isinstance(changes, list)
        for change in changes:
            assert isinstance(change, ConsentChange) and isinstance(change.opted_in, bool)
            assert change.channel == "email" and isinstance(change.email, str) and change.email

    run()


def test_fuzzed_signed_bodies_through_the_real_url_change_consent_only_when_they_parse(world, hubspot):
    connection = connect(world, hubspot)
    connector = connector_for(connection)
    client = Client(raise_request_exception=False)

    @settings(max_examples=SIGNED_THROUGH_URL, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies(hubspot_documents(hubspot.contact_id)))
    def run(body):
        try:
            connector.parse_inbound(signed_request(connection, body))
            unreadable = False
        except CrmError:  # HubSpot's API refused the lookup: answered 503, so HubSpot sends it again
            unreadable = True
        consents = list(CommunicationPreference.objects.order_by("pk").values_list("pk", "channel", "is_opted_in"))

        response = client.post(f"/hooks/crm/{connection.pk}/", data=body, content_type="application/json",
                               headers=v3_headers(body, hook_url(connection)))

        after = list(CommunicationPreference.objects.order_by("pk").values_list("pk", "channel", "is_opted_in"))
        if unreadable:
            assert response.status_code == 503 and after == consents, response.content
            return
        assert response.status_code == 200, response.content
        answer = response.json()
        assert 0 <= answer["applied"] <= answer["received"]
        if answer["applied"] == 0:
            assert after == consents, json.dumps(answer)

    run()
