"""The POS connector framework, through a third party's connector installed as a package (found
by its entry point only): webhooks verified first, every delivery kept, sales applied once,
unmatched sales kept for the customer to claim, failed deliveries replayed from the admin."""
import datetime as dt
import json
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.errors import ValidationFailed
from pos_integration import registry
from pos_integration.base import ConnectorError, PosConnector
from pos_integration.connections import create_connection, masked_secrets, update_connection
from pos_integration.models import PosConnection, WebhookDelivery
from pos_integration.tasks import retry_deliveries_task
from tests.factories import build_world
from tests.wallet.helpers import written_rows
from wallet.models import Card, LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

THIRD_PARTY = Path(__file__).resolve().parent.parent / "fixtures" / "third_party"
TOKEN = "demo-shared-token-123456"


@pytest.fixture
def third_party(monkeypatch):
    """The test package on sys.path, as `pip install` would put it (with its .dist-info)."""
    monkeypatch.syspath_prepend(str(THIRD_PARTY))
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def shop(third_party, make_connection):
    world = build_world()
    world.connection = make_connection(world, "demo", {"token": TOKEN})
    return world


def sale(card_number="", sale_id="S-1", amount=2500, receipt=""):
    return json.dumps({"sale_id": sale_id, "amount": amount, "currency": "EUR", "card_number": card_number,
                       "at": "2026-11-20T10:00:00+00:00", "receipt": receipt}).encode()


def test_an_installed_package_appears_in_the_registry_beside_the_built_in_connectors(third_party, settings):
    keys = set(registry.connectors())
    built_in = {path.split(".")[2] for path in settings.TESSERA_POS_CONNECTORS}  # pos_integration.connectors.<key>
    assert "generic" in built_in and keys == built_in | {"demo"}
    assert ("demo", "Demo POS (third party)") in registry.choices()


def test_the_third_party_connector_handles_a_webhook_and_a_repeat_earns_nothing(shop, post_webhook):
    response = post_webhook(shop.connection, sale(shop.card.number), {"X-Demo-Token": TOKEN})
    assert response.status_code == 200 and response.json()["received"] is True
    assert Card.objects.get(pk=shop.card.pk).balance == 25
    again = post_webhook(shop.connection, sale(shop.card.number), {"X-Demo-Token": TOKEN})
    assert again.status_code == 200
    assert Card.objects.get(pk=shop.card.pk).balance == 25
    assert LedgerEntry.objects.filter(card=shop.card, kind="earn").count() == 1
    first, second = WebhookDelivery.objects.order_by("pk")
    assert first.status == second.status == "processed"
    assert first.outcome[0]["points_earned"] == 25 and second.outcome[0]["replayed"] is True
    assert second.vendor_event_id == "S-1"  # learnt from the parsed webhook


def test_an_unverified_webhook_is_401_and_only_its_audit_record_is_written(shop, post_webhook):
    before = written_rows()
    for headers in ({"X-Demo-Token": "wrong"}, {}):
        response = post_webhook(shop.connection, sale(shop.card.number), headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "webhook_rejected"
    assert written_rows() == before
    rejected = WebhookDelivery.objects.filter(status="rejected")
    assert rejected.count() == 2
    assert rejected.first().headers.get("x-demo-token") in (None, "(masked)")
    assert "wrong" not in json.dumps(list(rejected.values_list("headers", flat=True)))


def test_an_unknown_or_disabled_connection_is_404(shop, post_webhook, client):
    PosConnection.objects.filter(pk=shop.connection.pk).update(is_active=False)
    assert post_webhook(shop.connection, sale(), {"X-Demo-Token": TOKEN}).status_code == 404
    assert client.post("/hooks/pos/00000000-0000-0000-0000-000000000000/", b"{}",
                       content_type="application/json").status_code == 404
    assert not WebhookDelivery.objects.exists()


def test_a_sale_without_a_known_card_is_kept_and_the_customer_claims_it_once(shop, post_webhook):
    from tests.api.conftest import client_for

    post_webhook(shop.connection, sale("", "S-9", 4200, receipt="R-7781"), {"X-Demo-Token": TOKEN})
    kept = Purchase.objects.get(external_id="S-9")
    assert kept.card is None and kept.receipt_code == "R-7781" and kept.points_earned == 0
    app = client_for(shop.customer.user)
    url = f"/api/v1/cards/{shop.card.pk}/claims/"
    wrong_total = app.post(url, {"receipt_code": "R-7781", "amount": 4100}, format="json", HTTP_IDEMPOTENCY_KEY="c0")
    assert wrong_total.status_code == 404
    claimed = app.post(url, {"receipt_code": "r-7781", "amount": 4200}, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert claimed.status_code == 201, claimed.content
    assert claimed.json()["points_earned"] == 42 and claimed.json()["balance"] == 42
    again = app.post(url, {"receipt_code": "R-7781", "amount": 4200}, format="json", HTTP_IDEMPOTENCY_KEY="c2")
    assert again.status_code == 409 and again.json()["error"]["code"] == "purchase_already_claimed"
    assert Card.objects.get(pk=shop.card.pk).balance == 42


def test_a_delivery_that_failed_is_replayed_from_the_admin_and_earns_once(shop, post_webhook, monkeypatch,
                                                                          admin_client):
    from tessera_demo_connector import DemoConnector

    def vendor_down(self, request):
        raise ConnectorError("vendor API unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(DemoConnector, "parse_webhook", vendor_down)
        post_webhook(shop.connection, sale(shop.card.number), {"X-Demo-Token": TOKEN})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "vendor API unavailable" in delivery.error
    assert Card.objects.get(pk=shop.card.pk).balance == 0
    for _ in range(2):
        response = admin_client.post("/admin/pos_integration/webhookdelivery/",
                                     {"action": "replay", "_selected_action": [delivery.pk]}, follow=True)
        assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "processed" and delivery.attempts == 3
    assert Card.objects.get(pk=shop.card.pk).balance == 25
    assert LedgerEntry.objects.filter(card=shop.card, kind="earn").count() == 1


def test_a_delivery_whose_task_never_ran_is_picked_up_by_the_retry_task(shop, client):
    # Posted without running on-commit callbacks: as if the broker had been down.
    client.generic("POST", f"/hooks/pos/{shop.connection.pk}/", sale(shop.card.number),
                   content_type="application/json", HTTP_X_DEMO_TOKEN=TOKEN)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "received"
    assert retry_deliveries_task() == 0  # too fresh: its own task may still come
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=delivery.received_at - dt.timedelta(minutes=3))
    assert retry_deliveries_task() == 1
    assert Card.objects.get(pk=shop.card.pk).balance == 25


def test_connection_settings_are_validated_and_secrets_never_come_back(third_party):
    world = build_world()
    with pytest.raises(ValidationFailed) as missing:
        create_connection(world.merchant, "demo", "Till POS", {})
    assert "token" in missing.value.fields
    with pytest.raises(ValidationFailed) as unknown:
        create_connection(world.merchant, "demo", "Till POS", {"token": TOKEN, "colour": "red"})
    assert "colour" in unknown.value.fields
    with pytest.raises(ValidationFailed):
        create_connection(world.merchant, "no-such-pos", "x", {})
    connection = create_connection(world.merchant, "demo", "Till POS", {"token": TOKEN})
    stored = PosConnection.objects.filter(pk=connection.pk).values_list("secrets_encrypted", flat=True).get()
    assert TOKEN not in stored and connection.config == {}
    assert masked_secrets(connection) == {"token": "••••3456"}
    update_connection(connection, {"token": ""})  # blank keeps the saved secret
    assert masked_secrets(connection) == {"token": "••••3456"}


def test_two_connectors_with_one_key_are_a_configuration_error(settings, third_party):
    settings.TESSERA_POS_CONNECTORS = ["tessera_demo_connector.DemoConnector", "tessera_demo_connector.DemoConnector"]
    registry.reset()
    assert "demo" in registry.connectors()  # the same class listed twice is harmless
    settings.TESSERA_POS_CONNECTORS = ["tests.pos.test_connector_framework.OtherDemo"]
    registry.reset()
    with pytest.raises(ImproperlyConfigured, match="Two plug-ins use the key 'demo'"):
        registry.connectors()


class OtherDemo(PosConnector):
    """Another package's connector that picked the same key."""

    key = "demo"


def test_a_sale_first_reported_without_its_customer_earns_once_when_a_later_report_names_the_card(
    shop, post_webhook
):
    post_webhook(shop.connection, sale("", "S-5", 3000), {"X-Demo-Token": TOKEN})
    assert Purchase.objects.get(external_id="S-5").card is None
    for _ in range(2):
        assert post_webhook(shop.connection, sale(shop.card.number, "S-5", 3000),
                            {"X-Demo-Token": TOKEN}).status_code == 200
    purchase = Purchase.objects.get(external_id="S-5")
    assert purchase.card_id == shop.card.pk and purchase.points_earned == 30
    assert Card.objects.get(pk=shop.card.pk).balance == 30
    assert LedgerEntry.objects.filter(purchase=purchase, kind="earn").count() == 1
    different = post_webhook(shop.connection, sale(shop.card.number, "S-5", 9999), {"X-Demo-Token": TOKEN})
    assert different.status_code == 200
    assert "already recorded as 3000 EUR" in WebhookDelivery.objects.latest("pk").error
