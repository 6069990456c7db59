"""Acceptance: on PostgreSQL and a real broker, a Celery worker killed with SIGKILL in the middle of a
CRM batch, then restarted, loses no event, and the CRM ends exactly as it would with no failure.

The fake CRM stores the first batch and then takes its time to answer, so the worker dies after the
CRM has the batch but before our database says so: the restarted worker's sweep sends that batch
again, and the CRM's upserts keyed by event id must absorb the resend.

Broker: CELERY_BROKER_URL (Redis in CI, where REQUIRE_SERVICES=1 turns an unreachable one into a
failure), else kombu's SQLite-backed transport in a temporary file.
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection as db

from config.celery import app
from crm_sync import registry
from crm_sync.connections import connector_for
from crm_sync.models import CrmDelivery
from crm_sync.profiles import outbound_events
from crm_sync.tasks import deliver_merchant_task, sweep_task
from tests.crm.crm_test_connector import DOTTED_PATH, connect
from tests.crm.fake_crm import FakeCrm
from tests.factories import build_world, make_card
from tests.wallet.helpers import buy
from wallet.models import Card, DomainEvent

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-test-crash-0123456789"
SLOW_FIRST_ANSWER_SECONDS = 10.0

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def crm(settings):
    settings.TESSERA_CRM_CONNECTORS = [DOTTED_PATH]
    # This test sends the tasks itself, to a queue of its own, so that no other worker can take them.
    settings.TESSERA_OUTBOX_LISTENERS = []
    registry.reset()
    fake = FakeCrm(api_key=API_KEY).start()
    yield fake
    fake.stop()
    registry.reset()


def worker_database_url() -> str:
    """The test database, for the worker process (pytest-django created it under a test_ name)."""
    s = db.settings_dict
    credentials = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{credentials}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """`celery worker` in its own process (solo pool: the task runs in the process we kill)."""

    def __init__(self, env: dict, queue: str, log: Path):
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue,
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._file.close()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._file.close()
        return self.log.read_text()


def wait_for(condition, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def forget_private_queue(broker_url: str, queue: str) -> None:
    """On Redis the killed worker's task stays unacknowledged until the visibility timeout (an hour),
    then goes back to this test's queue, which nobody reads: drop it, and the queue's bindings."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return
    import redis

    client = redis.Redis.from_url(broker_url)
    for tag, raw in client.hgetall("unacked").items():
        if json.loads(raw)[2] == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def crm_state_without_failures(connection, merchant) -> dict:
    """What the CRM holds when the same events are simply sent once each, in order."""
    reference = FakeCrm(api_key=API_KEY).start()
    try:
        connection.config["base_url"] = reference.url
        connector = connector_for(connection)
        events = outbound_events(list(DomainEvent.objects.filter(merchant=merchant).order_by("id")), merchant.pk)
        for start in range(0, len(events), connector.batch_size):
            assert all(r.ok for r in connector.push(events[start:start + connector.batch_size]))
        return reference.state()
    finally:
        reference.stop()


def test_a_worker_killed_mid_batch_loses_no_event_and_the_crm_ends_as_without_failure(broker_url, crm, tmp_path):
    world = build_world()
    cards = [world.card, *(make_card(world.program) for _ in range(3))]
    for round_ in range(3):
        for index, card in enumerate(cards):
            buy(card, 700 + 900 * index + 100 * round_)
    connection = connect(world.merchant, crm.url, API_KEY, batch_size=10, timeout_seconds=60)
    all_events = list(DomainEvent.objects.filter(merchant=world.merchant).values_list("id", flat=True))
    deliveries = CrmDelivery.objects.filter(connection=connection)
    crm.slow_next(SLOW_FIRST_ANSWER_SECONDS)

    queue = f"crm-kill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.crm.worker_settings", "CELERY_BROKER_URL": broker_url,
           "DATABASE_URL": worker_database_url()}
    first = Worker(env, queue, tmp_path / "worker-1.log")
    second = None
    try:
        with app.connection_for_write(broker_url) as broker:
            deliver_merchant_task.apply_async(args=[world.merchant.pk], queue=queue, connection=broker)
            wait_for(lambda: crm.batches, seconds=60, what=f"no batch reached the CRM: {first.log.read_text()}")
            first.kill()  # the CRM has the batch; the worker never heard back
            in_flight = list(crm.batches[0])
            assert not deliveries.filter(status=CrmDelivery.Status.DELIVERED).exists()
            assert deliveries.count() == len(all_events)  # the fan-out had committed before the batch

            second = Worker(env, queue, tmp_path / "worker-2.log")
            deadline = time.monotonic() + 120
            while deliveries.exclude(status=CrmDelivery.Status.DELIVERED).exists():
                assert time.monotonic() < deadline, f"not all delivered: {second.log.read_text()}"
                sweep_task.apply_async(queue=queue, connection=broker)  # what beat does every 30 s
                time.sleep(2)
    finally:
        output = second.stop() if second else ""
        if first.process.poll() is None:
            first.stop()
        forget_private_queue(broker_url, queue)
    assert "Traceback" not in output, output

    assert sorted(int(i) for i in crm.receipts) == sorted(all_events)  # nothing lost
    assert {crm.receipts[i] for i in in_flight} == {2}  # the batch in flight was sent again ...
    assert crm_state_without_failures(connection, world.merchant) == crm.state()  # ... and changed nothing
    for card in cards:
        card = Card.objects.get(pk=card.pk)
        assert crm.state()["contacts"][str(card.wallet.customer_id)]["card"]["balance"] == card.balance
