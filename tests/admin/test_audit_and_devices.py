"""Audit history of who changed programs, rewards and connections; device keys issued in the admin."""
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from crm_sync.models import CrmConnection
from pos_integration.models import PosConnection, PosDevice
from tests.admin.tenant_world import build_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha():
    return build_tenant("ALPHA")


def _post_change(client, model_admin_url, **changes):
    form = client.get(model_admin_url).context["adminform"].form
    data = {name: (json.dumps(value) if isinstance(value, dict) else value)
            for name, value in form.initial.items() if value is not None}
    data.update(changes)
    return client.post(model_admin_url, data)


def test_program_and_reward_changes_are_kept_with_who_made_them(client, alpha):
    client.force_login(alpha.manager)
    url = reverse("admin:merchants_program_change", args=[alpha.program.pk])
    page = client.get(url)
    data = {name: value for name, value in page.context["adminform"].form.initial.items() if value is not None}
    data.update({"merchant": alpha.merchant.pk, "points_per_currency_unit": "2", "points_validity_days": 365,
                 "expiry_warning_days": 14})
    data.pop("id", None)
    # Inline rows already saved are sent back unchanged.
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = len(formset.forms)
        data[f"{formset.prefix}-INITIAL_FORMS"] = formset.initial_form_count()
        for index, form in enumerate(formset.forms):
            for name, value in form.initial.items():
                if value is not None:
                    data[f"{formset.prefix}-{index}-{name}"] = value
            data[f"{formset.prefix}-{index}-id"] = form.instance.pk
            data[f"{formset.prefix}-{index}-program"] = alpha.program.pk
    response = client.post(url, data)
    assert response.status_code == 302, [inline.formset.errors for inline in response.context["inline_admin_formsets"]]
    latest = alpha.program.history.first()
    assert (latest.history_user, str(latest.points_per_currency_unit)) == (alpha.manager, "2.0000")
    delta = latest.diff_against(latest.prev_record)
    assert [change.field for change in delta.changes] == ["points_per_currency_unit"]
    history = client.get(reverse("admin:merchants_program_history", args=[alpha.program.pk]))
    assert alpha.manager.username in history.content.decode()


def test_connection_changes_are_audited_without_their_secrets(client, alpha):
    client.force_login(alpha.owner)
    url = reverse("admin:pos_integration_posconnection_change", args=[alpha.pos_connection.pk])
    response = _post_change(client, url, name="ALPHA POS main", store=alpha.store.pk, is_active="on",
                            connector="generic", merchant=alpha.merchant.pk)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert PosConnection.objects.get(pk=alpha.pos_connection.pk).name == "ALPHA POS main"
    latest = alpha.pos_connection.history.first()
    assert (latest.history_user, latest.name) == (alpha.owner, "ALPHA POS main")
    assert not hasattr(latest, "secrets_encrypted")

    changelist = reverse("admin:crm_sync_crmconnection_changelist")
    client.post(changelist, {"action": "pause", "_selected_action": [alpha.crm_connection.pk], "index": 0})
    assert CrmConnection.objects.get(pk=alpha.crm_connection.pk).is_paused
    paused = alpha.crm_connection.history.first()
    assert (paused.history_user, paused.is_paused) == (alpha.owner, True)


def test_a_device_added_in_the_admin_shows_its_key_once_and_the_key_works(client, alpha):
    client.force_login(alpha.manager)
    response = client.post(reverse("admin:pos_integration_posdevice_add"), {"store": alpha.store.pk,
                                                                            "name": "Back counter"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = response.context["key"]
    device = PosDevice.objects.get(name="Back counter")
    assert (device.merchant, device.store) == (alpha.merchant, alpha.store)
    assert key not in client.get(reverse("admin:pos_integration_posdevice_change", args=[device.pk])).content.decode()
    till = APIClient()
    till.credentials(HTTP_AUTHORIZATION=f"Device {key}")
    assert till.get("/api/pos/v1/device/").status_code == 200

    changelist = reverse("admin:pos_integration_posdevice_changelist")
    rotated = client.post(changelist, {"action": "rotate_key", "_selected_action": [device.pk], "index": 0})
    assert rotated.context["key"] != key
    assert till.get("/api/pos/v1/device/").status_code == 401
    client.post(changelist, {"action": "revoke", "_selected_action": [device.pk], "index": 0})
    till.credentials(HTTP_AUTHORIZATION=f"Device {rotated.context['key']}")
    assert till.get("/api/pos/v1/device/").status_code == 401
    assert device.history.first().history_user == alpha.manager


def test_a_device_cannot_be_added_to_another_merchants_store(client, alpha):
    bravo = build_tenant("BRAVO")
    client.force_login(alpha.owner)
    response = client.post(reverse("admin:pos_integration_posdevice_add"), {"store": bravo.store.pk, "name": "Spy"})
    assert response.status_code == 200 and "store" in response.context["adminform"].form.errors
    assert not PosDevice.objects.filter(name="Spy").exists()
