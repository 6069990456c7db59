"""What a merchant sees of a CRM connection's health in the admin, and what they can do there:
lag, counts by state, the last error; pause and resume; retry dead letters."""
import datetime as dt

import pytest
from django.utils import timezone

from crm_sync.delivery import deliver_batch
from crm_sync.fanout import fan_out
from crm_sync.health import health_of
from crm_sync.models import CrmConnection, CrmDelivery
from tests.crm.test_webhook_connector import SECRET, connect, receiver, webhook_connector_installed  # noqa: F401
from tests.wallet.helpers import buy

pytestmark = pytest.mark.django_db
LIST = "/admin/crm_sync/crmconnection/"


def test_health_shows_lag_failures_and_dead_letters_then_recovers(world, receiver, connect):  # noqa: F811
    connection = connect(max_attempts=2)
    buy(world.card, 1000)
    now = timezone.now()
    fan_out(connection.pk, now=now)
    waiting = health_of(connection, now=now + dt.timedelta(seconds=30))
    assert waiting.pending > 0 and waiting.delivered == 0 and waiting.lag >= dt.timedelta(seconds=30)

    receiver.fail(503, times=10)
    deliver_batch(connection.pk, now=now)
    connection.refresh_from_db()
    failing = health_of(connection, now=now)
    assert failing.failing == failing.pending > 0 and "503" in failing.last_error
    deliver_batch(connection.pk, now=now + dt.timedelta(hours=2))
    assert health_of(connection).dead == failing.pending


def test_the_admin_lists_health_and_pauses_resumes_and_retries(world, receiver, connect, admin_client):  # noqa: F811
    connection = connect(max_attempts=1)
    buy(world.card, 1000)
    receiver.fail(500, times=1)
    fan_out(connection.pk)
    deliver_batch(connection.pk)
    dead = CrmDelivery.objects.filter(connection=connection, status="dead").count()
    assert dead > 0
    page = admin_client.get(LIST).content.decode()
    assert "Orders system" in page and f">{dead}<" in page

    admin_client.post(LIST, {"action": "pause", "_selected_action": [connection.pk]})
    assert CrmConnection.objects.get(pk=connection.pk).is_paused
    admin_client.post(LIST, {"action": "retry_dead", "_selected_action": [connection.pk]})
    assert deliver_batch(connection.pk).sent == 0  # paused: the retried letters wait
    admin_client.post(LIST, {"action": "resume", "_selected_action": [connection.pk]})
    deliver_batch(connection.pk)
    assert set(CrmDelivery.objects.filter(connection=connection).values_list("status", flat=True)) == {"delivered"}
    assert len(receiver.events) == dead
    detail = admin_client.get(f"{LIST}{connection.pk}/change/").content.decode()
    assert f"/hooks/crm/{connection.pk}/" in detail and "0 dead" in detail and SECRET not in detail
