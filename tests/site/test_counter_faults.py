"""Faults at the counter: a CRM that hangs or answers 5xx, and a broker that refuses or hangs, never
slow or fail a purchase. The till gets its 201 at once, the points and the outbox event are written,
and the event reaches the CRM later, when the fault is over.

A purchase through POST /api/pos/v1/purchases/ touches no vendor: the counter calls no POS connector
(those are called only by webhook processing and polling, both Celery tasks), and the CRM hears of the
purchase through the outbox. Inside the request, on commit, the CRM side only publishes a Celery
message (`crm_sync.outbox`), with one try and short socket timeouts; the beat sweep ships whatever
that message did not.

The bounds are behaviour, not benchmarks: the CRM sleeps 5 s against a 3 s client timeout, the broker
holds a connection 5 s without a word; the till must be answered well within those.
"""
import datetime as dt
import socket
import threading
import time
from contextlib import closing, nullcontext

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from kombu import Connection

from config.celery import app as celery_app
from crm_sync import registry
from crm_sync.delivery import deliver_batch
from crm_sync.fanout import fan_out
from crm_sync.models import CrmDelivery
from crm_sync.outbox import forget_connected_merchants
from pos_integration.connections import create_connection
from tests.crm.crm_test_connector import DOTTED_PATH, connect
from tests.crm.fake_crm import FakeCrm
from tests.factories import build_world
from tests.pos.connectors.clover_fake import FakeClover
from tests.pos.helpers import till
from tests.services import reachable_broker
from wallet.models import Card, DomainEvent, LedgerEntry, Purchase

API_KEY = "sk-test-counter-faults-0123"
CRM_DELAY_SECONDS = 5.0  # how long the hanging CRM sleeps before it drops the request
CRM_CLIENT_TIMEOUT_SECONDS = 3.0  # the connection's timeout: under the CRM's delay, far above the bound
BROKER_HOLD_SECONDS = 5.0  # how long the hung broker keeps a connection open without a word
COUNTER_BOUND_SECONDS = 1.0  # a purchase while a vendor fails
BROKER_DOWN_BOUND_SECONDS = 1.5  # a purchase while the broker fails (the publish may wait 0.5 s for it)
REDIS_BACK = "redis://127.0.0.1:6379/15"
DELIVER_TASK = "crm_sync.deliver_merchant"
PURCHASE_EVENT = "wallet.purchase.recorded"


class FailingCrm(FakeCrm):
    """The fake CRM, with an outage of either kind until `recover()`."""

    block_on_close = False  # stop() must not wait for a handler that still sleeps

    def fail_with(self, fault: str) -> None:
        if fault == "hang":
            self.hang(CRM_DELAY_SECONDS, times=1000)  # every request sleeps past the client's timeout
        else:
            self.down(500)

    def recover(self) -> None:
        with self.lock:
            self._actions.clear()
        self.up()


class HungBroker:
    """A port that accepts connections and never answers, like a Redis stuck in a fork or a proxy whose
    backend died. Each connection is dropped after BROKER_HOLD_SECONDS, so a client without a read
    timeout fails the test (slow) instead of hanging it forever."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            timer = threading.Timer(BROKER_HOLD_SECONDS, conn.close)
            timer.daemon = True
            timer.start()

    @property
    def connections(self) -> int:
        return len(self._held)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._listener.close()
        for conn in self._held:
            conn.close()


def closed_port_url(scheme: str = "redis") -> str:
    """A local port nobody listens on: connecting is refused at once."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"{scheme}://127.0.0.1:{probe.getsockname()[1]}/0"


@pytest.fixture
def crm(settings):
    settings.TESSERA_CRM_CONNECTORS = [DOTTED_PATH]
    registry.reset()
    forget_connected_merchants()
    fake = FailingCrm(api_key=API_KEY).start()
    yield fake
    fake.stop()
    registry.reset()
    forget_connected_merchants()


@pytest.fixture
def eager_celery(monkeypatch):
    """The worst case: any task started in the request would run inside it."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def broker(monkeypatch):
    """use(url): point Celery's producers at `url` for this test (the environment would win over conf)."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)

    def use(url: str) -> None:
        monkeypatch.setitem(celery_app.conf, "broker_url", url)

    return use


@pytest.fixture
def redis_back():
    """The real Redis (db 15), for "the broker is back"; absent, the test skips (fails in CI)."""
    return reachable_broker(REDIS_BACK, "Redis at", timeout=2)


def purchase(world, external_id: str, on_commit=None):
    """Ring up a sale at the till; returns the response and how long the till waited for it.

    `on_commit`: pytest-django's django_capture_on_commit_callbacks. Given, the request's on-commit
    callbacks run before the clock stops, as in production, where the view's transaction commits (and
    its callbacks run) before the till gets its answer. The test's own transaction never commits."""
    client = till(world)
    started = time.monotonic()
    with on_commit(execute=True) if on_commit else nullcontext():
        response = client.post(
            "/api/pos/v1/purchases/",
            {"code": world.card.number, "external_id": external_id, "amount": 1250, "currency": "EUR"},
            format="json", HTTP_IDEMPOTENCY_KEY=f"sale-{external_id}",
        )
    return response, time.monotonic() - started


def assert_recorded(world, response, external_id: str) -> DomainEvent:
    """The sale, its points and its outbox event are in the database; returns the event."""
    sale = Purchase.objects.get(merchant=world.merchant, external_id=external_id)
    entry = LedgerEntry.objects.get(purchase=sale)
    card = Card.objects.get(pk=world.card.pk)
    assert entry.delta == sale.points_earned == response.json()["points_earned"] > 0
    assert card.balance == response.json()["balance"] == sum(card.entries.values_list("delta", flat=True))
    return DomainEvent.objects.get(merchant=world.merchant, event_type=PURCHASE_EVENT, payload__purchase_id=sale.pk)


def queued_messages(url: str, task: str) -> list[list]:
    """Take the `task` messages waiting on the broker's default queue; returns their args."""
    taken, others = [], []
    with Connection(url, connect_timeout=2) as connection:
        queue = connection.SimpleQueue(celery_app.conf.task_default_queue)
        while True:
            try:
                message = queue.get_nowait()  # the publish was synchronous: it is there or never
            except queue.Empty:
                break
            if message.headers.get("task") == task:
                taken.append(message.decode()[0])
                message.ack()
            else:
                others.append(message)
        for message in others:
            message.requeue()  # not ours: leave it for whoever sent it
        queue.close()
    return taken


def run_as_worker(task: str, args=()) -> None:
    celery_app.tasks[task].apply(args=list(args), throw=True)


def deliver_later(connection) -> None:
    """The sweep's work, after every retry the fault caused is due (the backoff cap is an hour)."""
    later = timezone.now() + dt.timedelta(hours=2)
    fan_out(connection.pk, now=later)
    while deliver_batch(connection.pk, now=later).sent:
        pass


def received(crm) -> dict[int, int]:
    return {int(event_id): times for event_id, times in crm.receipts.items()}


# -- a CRM that hangs or answers 500 ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["hang", "500"])
def test_a_crm_that_hangs_or_answers_500_never_slows_or_fails_a_purchase_with_eager_celery(
    fault, crm, eager_celery, django_capture_on_commit_callbacks
):
    """Eager Celery runs a task where it is started: so nothing in the purchase's own transaction (view,
    services, ledger, outbox) may start the CRM delivery. It waits for the commit. (Eager is a test mode:
    there the on-commit shipping itself would run in the request; the next test runs what production does.)"""
    world = build_world()
    connection = connect(world.merchant, crm.url, API_KEY, timeout_seconds=CRM_CLIENT_TIMEOUT_SECONDS)
    forget_connected_merchants()  # (the connection's own on-commit does it; the test never commits)
    crm.fail_with(fault)

    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        response, waited = purchase(world, "S-1")

    assert response.status_code == 201, response.content
    assert waited < COUNTER_BOUND_SECONDS, f"the till waited {waited:.2f} s on a CRM that fails ({fault})"
    assert crm.requests == []  # nothing reached the CRM while the till waited, though tasks run eagerly
    event = assert_recorded(world, response, "S-1")
    assert after_commit  # the shipping waits for the commit
    if fault == "500":
        for callback in after_commit:
            callback()  # the shipping on commit, run here by eager Celery: the CRM refuses it
        assert crm.requests and received(crm) == {}
        waiting = CrmDelivery.objects.get(connection=connection, event=event)
        assert waiting.status == CrmDelivery.Status.PENDING and "500" in waiting.last_error

    crm.recover()
    deliver_later(connection)

    assert received(crm)[event.pk] == 1
    assert set(received(crm)) == set(DomainEvent.objects.filter(merchant=world.merchant).values_list("id", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["hang", "500"])
def test_on_commit_the_purchase_only_publishes_a_message_and_the_worker_ships_it_later(
    fault, crm, broker, django_capture_on_commit_callbacks
):
    """What production does: the outbox listener runs on commit inside the request; it must only publish."""
    broker("memory://")
    queued_messages("memory://", DELIVER_TASK)  # nothing left over from an earlier test
    world = build_world()
    connect(world.merchant, crm.url, API_KEY, timeout_seconds=CRM_CLIENT_TIMEOUT_SECONDS)
    forget_connected_merchants()  # (the connection's own on-commit does it; the test never commits)
    crm.fail_with(fault)

    response, waited = purchase(world, "S-2", django_capture_on_commit_callbacks)

    assert response.status_code == 201, response.content
    assert waited < COUNTER_BOUND_SECONDS, f"the till waited {waited:.2f} s on a CRM that fails ({fault})"
    assert crm.requests == []
    event = assert_recorded(world, response, "S-2")
    assert queued_messages("memory://", DELIVER_TASK) == [[world.merchant.pk]]

    crm.recover()
    run_as_worker(DELIVER_TASK, [world.merchant.pk])

    assert received(crm)[event.pk] == 1


@pytest.mark.django_db
def test_the_counter_calls_no_pos_vendor_so_a_failing_pos_api_cannot_slow_a_purchase(
    eager_celery, django_capture_on_commit_callbacks
):
    """POS connectors are called only to process a webhook or to poll (Celery tasks), never by the till."""
    world = build_world()
    clover = FakeClover(token="clover-test-api-token").start()
    try:
        create_connection(world.merchant, "clover", "Clover", {
            "clover_merchant_id": "MID0000000001", "api_token": "clover-test-api-token",
            "auth_code": "0307e264-b33a-4913-88aa-37b10014a0b8", "api_base_url": clover.url,
        }, store=world.store)
        clover.fail(500, times=100)

        response, waited = purchase(world, "S-5", django_capture_on_commit_callbacks)

        assert response.status_code == 201 and waited < COUNTER_BOUND_SECONDS
        assert_recorded(world, response, "S-5")
        assert clover.requests == []
    finally:
        clover.stop()


# -- the broker down -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["broker refuses", "broker hangs", "broker and cache refuse"])
def test_with_the_broker_down_purchases_record_and_their_events_flow_once_it_is_back(
    outage, crm, broker, redis_back, settings, django_capture_on_commit_callbacks
):
    queued_messages(redis_back, DELIVER_TASK)  # nothing left over from an earlier run
    world = build_world()
    connect(world.merchant, crm.url, API_KEY, timeout_seconds=CRM_CLIENT_TIMEOUT_SECONDS)
    forget_connected_merchants()  # (the connection's own on-commit does it; the test never commits)
    hung = HungBroker() if outage == "broker hangs" else None
    working_caches = settings.CACHES
    try:
        broker(hung.url if hung else closed_port_url())
        if outage == "broker and cache refuse":
            settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                           "LOCATION": closed_port_url()}}

        first, waited = purchase(world, "S-3", django_capture_on_commit_callbacks)

        assert first.status_code == 201, first.content
        assert waited < BROKER_DOWN_BOUND_SECONDS, f"the till waited {waited:.2f} s on a broker that is down"
        event = assert_recorded(world, first, "S-3")
        assert crm.requests == []
        if hung:  # the next sale does not knock on the hung broker again: it rests for a while
            again, waited = purchase(world, "S-3b", django_capture_on_commit_callbacks)
            assert again.status_code == 201 and waited < BROKER_DOWN_BOUND_SECONDS
            assert hung.connections == 1
    finally:
        if hung:
            hung.stop()
        settings.CACHES = working_caches

    # The broker is back. Beat's sweep (the task its schedule names, run as a worker runs it) ships the
    # event that waited in the outbox.
    broker(redis_back)
    run_as_worker(django_settings.CELERY_BEAT_SCHEDULE["crm-sweep"]["task"])
    assert received(crm)[event.pk] == 1

    # And the next purchase's message goes through the broker again, for the worker to ship at once.
    second, waited = purchase(world, "S-4", django_capture_on_commit_callbacks)
    assert second.status_code == 201 and waited < COUNTER_BOUND_SECONDS
    assert queued_messages(redis_back, DELIVER_TASK) == [[world.merchant.pk]]
    run_as_worker(DELIVER_TASK, [world.merchant.pk])
    later_event = assert_recorded(world, second, "S-4")
    assert received(crm)[later_event.pk] == 1 and received(crm)[event.pk] == 1
