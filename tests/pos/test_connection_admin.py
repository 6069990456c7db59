"""Setting up a POS connection in the admin: validated settings, the webhook URL to register, and
secrets that are never shown again in full."""
import pytest

from core.standard_webhooks import generate_secret
from pos_integration.connections import masked_secrets
from pos_integration.models import PosConnection
from tests.factories import build_world

pytestmark = pytest.mark.django_db
ADD = "/admin/pos_integration/posconnection/add/"


def form(world, settings_json: str, **overrides) -> dict:
    return {"merchant": world.merchant.pk, "store": world.store.pk, "connector": "generic", "name": "Till webhook",
            "is_active": "on", "settings_json": settings_json, **overrides}


def test_a_connection_is_created_with_its_secret_sealed_and_the_page_shows_the_webhook_url(admin_client, settings):
    settings.TESSERA_PUBLIC_URL = "https://loyalty.example.com"
    world = build_world()
    secret = generate_secret()
    response = admin_client.post(ADD, form(world, f'{{"signing_secret": "{secret}"}}'))
    assert response.status_code == 302, response.content[:2000]
    connection = PosConnection.objects.get()
    assert connection.connector == "generic" and connection.config == {}
    assert secret not in connection.secrets_encrypted
    page = admin_client.get(f"/admin/pos_integration/posconnection/{connection.pk}/change/").content.decode()
    assert f"https://loyalty.example.com/hooks/pos/{connection.pk}/" in page
    assert secret not in page and masked_secrets(connection)["signing_secret"] in page


def test_bad_settings_are_shown_on_the_form_and_nothing_is_saved(admin_client):
    world = build_world()
    response = admin_client.post(ADD, form(world, '{"signing_secret": "not-a-secret"}'))
    assert response.status_code == 200 and "signing_secret" in response.content.decode()
    assert not PosConnection.objects.exists()


def test_saving_with_the_masked_secret_keeps_it(admin_client):
    world = build_world()
    secret = generate_secret()
    admin_client.post(ADD, form(world, f'{{"signing_secret": "{secret}"}}'))
    connection = PosConnection.objects.get()
    masked = masked_secrets(connection)["signing_secret"]
    url = f"/admin/pos_integration/posconnection/{connection.pk}/change/"
    response = admin_client.post(url, form(world, f'{{"signing_secret": "{masked}"}}', name="Renamed"))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Renamed" and masked_secrets(connection)["signing_secret"] == masked
