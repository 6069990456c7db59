"""A database restart while the till rings up sales: a request whose connection dies fails cleanly, in
the error shape, writes nothing, and the same process answers the next request (issue 10, "Faults").

A restart is simulated by terminating this process's PostgreSQL backend from a second, separate
connection (`pg_terminate_backend`), which is what a restart does to every kept connection. The
requests go through Django's WSGI handler as gunicorn calls it, not the test client: the test client
unhooks `close_old_connections` from the request signals, and that hook is what drops a broken
connection after the request that found it (a process recovers only through it).

bench/harness/db_restart.py restarts a real cluster under load; these tests pin the per-request rules.
"""
import json

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test.client import RequestFactory

from pos_integration.models import CounterAction
from pos_integration.services import register_device
from tests.factories import build_world
from wallet.ledger import cards_out_of_balance
from wallet.models import Card, DomainEvent, IdempotencyRecord, LedgerEntry, Purchase

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PURCHASES = "/api/pos/v1/purchases/"
SERVER_ERROR = {"error": {"code": "server_error", "message": "Something went wrong on our side; retry later.",
                          "fields": {}}}


class Answer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class Till:
    """A device's requests through the WSGI application, as gunicorn's sync worker makes them: the
    request signals fire with Django's connection hooks attached, and errors become responses."""

    def __init__(self, world):
        self.world = world
        self.key = register_device(world.store, "Till").key
        self.app = WSGIHandler()

    def purchase(self, external_id: str, idempotency_key: str | None = None) -> Answer:
        body = {"code": self.world.card.number, "external_id": external_id, "amount": 1250, "currency": "EUR"}
        environ = RequestFactory().post(
            PURCHASES, data=json.dumps(body), content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {self.key}", HTTP_IDEMPOTENCY_KEY=idempotency_key or f"sale-{external_id}",
        ).environ
        started = {}

        def start_response(status, headers, exc_info=None):
            started.update(status=int(status.split()[0]), headers=dict(headers))

        response = self.app(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            response.close()  # fires request_finished, as the WSGI server does
        return Answer(started["status"], started["headers"], content)


def backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def terminate_backend(pid: int) -> None:
    """What a restart does to one kept connection, done from another connection. Waits (up to 5 s)
    until the backend has exited, so the next statement on it surely finds it gone."""
    params = connection.settings_dict
    with psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"] or None,
                         host=params["HOST"] or None, port=params["PORT"] or None, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]


def assert_clean_server_error(answer: Answer) -> None:
    """A 500 a till can act on (retry later), telling nothing about the database behind it."""
    assert answer.status == 500
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == SERVER_ERROR
    text = answer.body.decode().lower()
    for leak in ("traceback", "psycopg", "operationalerror", "terminat", "postgres",
                 connection.settings_dict["NAME"].lower(), django_settings.SECRET_KEY.lower()):
        assert leak not in text


def written(world) -> dict:
    """What the merchant's sales have written so far, row counts per kind."""
    return {
        "purchases": Purchase.objects.filter(merchant=world.merchant).count(),
        "entries": LedgerEntry.objects.filter(card=world.card).count(),
        "outbox_events": DomainEvent.objects.filter(merchant=world.merchant).count(),
        "idempotency_records": IdempotencyRecord.objects.filter(merchant=world.merchant).count(),
        "counter_actions": CounterAction.objects.filter(merchant=world.merchant).count(),
    }


def assert_ledger_balanced(world, balance: int) -> None:
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == balance == sum(card.entries.values_list("delta", flat=True))
    assert cards_out_of_balance() == []  # what manage.py check_ledger runs


@pytest.fixture
def health_checks(request):
    """DATABASE_CONN_HEALTH_CHECKS for this test's connection; it is read when the connection opens."""
    saved = connection.settings_dict["CONN_HEALTH_CHECKS"]
    connection.settings_dict["CONN_HEALTH_CHECKS"] = request.param
    connection.close()
    yield request.param
    connection.settings_dict["CONN_HEALTH_CHECKS"] = saved
    connection.close()


# -- the connection dies between two requests -------------------------------------------------------


@pytest.mark.parametrize("health_checks", [False, True], ids=["health checks off", "health checks on"],
                         indirect=True)
def test_after_a_restart_between_sales_the_till_sees_at_most_one_clean_500_and_the_worker_recovers(health_checks):
    """Off (the default), the first request on the dead kept connection fails with the error shape and
    earns nothing; Django drops the connection after it, so the retry, in the same process, records the
    sale once. On, the "SELECT 1" before the request's first query finds it dead and reconnects."""
    world = build_world()
    till = Till(world)
    assert till.purchase("S-1").status == 201
    balance = Card.objects.get(pk=world.card.pk).balance
    before = written(world)

    terminate_backend(backend_pid())
    after_restart = till.purchase("S-2")

    if health_checks:
        assert after_restart.status == 201, after_restart.body
    else:
        assert_clean_server_error(after_restart)
        assert written(world) == before  # nothing of the failed sale
        assert_ledger_balanced(world, balance)
        retry = till.purchase("S-2")  # the till retries with the same key
        assert retry.status == 201, retry.body
        assert "Idempotent-Replayed" not in retry.headers  # recorded now, not replayed from a ghost
    assert till.purchase("S-3").status == 201
    assert Purchase.objects.filter(merchant=world.merchant).count() == 3
    assert LedgerEntry.objects.filter(card=world.card).count() == 3
    assert_ledger_balanced(world, Card.objects.get(pk=world.card.pk).balance)


# -- the connection dies inside the purchase's transaction -----------------------------------------

# Statements of a purchase, in the order its one transaction runs them (the ledger entry, the outbox
# event, then the till's CounterAction, the last statement before COMMIT).
KILL_AFTER = {
    "after the ledger entry": 'INSERT INTO "wallet_ledgerentry"',
    "after the outbox event": 'INSERT INTO "wallet_domainevent"',
    "just before commit": 'INSERT INTO "pos_integration_counteraction"',
}


class KillAfter:
    """A database execute wrapper (Django's instrumentation hook): runs each statement for real, and
    after the first one that starts with `prefix` terminates this very connection's backend."""

    def __init__(self, prefix: str):
        self.prefix, self.fired = prefix, False

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not self.fired and sql.startswith(self.prefix):
            self.fired = True
            terminate_backend(context["connection"].connection.info.backend_pid)
        return result


@pytest.mark.parametrize("point", KILL_AFTER)
def test_a_restart_inside_the_purchase_transaction_writes_nothing_and_the_retry_earns_once(point):
    world = build_world()
    till = Till(world)
    nothing = written(world)
    kill = KillAfter(KILL_AFTER[point])

    with connection.execute_wrapper(kill):
        failed = till.purchase("S-1")

    assert kill.fired
    assert_clean_server_error(failed)
    assert written(world) == nothing  # no purchase, entry, outbox event, key or counter action
    assert_ledger_balanced(world, 0)

    retry = till.purchase("S-1")  # same key, same body: judged afresh, since no key was stored
    assert retry.status == 201, retry.body
    assert "Idempotent-Replayed" not in retry.headers
    assert retry.json()["points_earned"] > 0 and retry.json()["balance"] == retry.json()["points_earned"]
    again = till.purchase("S-1")
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == retry.json()
    once = written(world)
    assert {kind: once[kind] - nothing[kind] for kind in once if kind != "outbox_events"} == {
        "purchases": 1, "entries": 1, "idempotency_records": 1, "counter_actions": 1,
    }
    assert DomainEvent.objects.filter(merchant=world.merchant, event_type="wallet.purchase.recorded",
                                      payload__external_id="S-1").count() == 1
    assert_ledger_balanced(world, retry.json()["points_earned"])
