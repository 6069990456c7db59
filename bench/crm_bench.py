"""CRM delivery: events delivered per second by batch size, and outbox lag under a stream of purchases.

Both parts run on PostgreSQL against the fake CRM of the tests (`tests/crm/fake_crm.py`, a real local
HTTP server in this process) through the stand-in connector (`tests/crm/crm_test_connector.py`: one
keep-alive httpx client, JSON batches of up to 100 events).

1. Throughput: --events outbox events (points changes of --cards customers, written to the outbox in
   bulk and already settled, so only delivery is timed) are fanned out and sent by `deliver_batch` in
   a loop, once per batch size (1, 50, 100; a new connection each time). Prints events/s and the time
   per `deliver_batch` call, and checks that the CRM received every event exactly once.
2. Lag: producer threads record --rate purchases/s through `record_purchase` for --seconds while a
   deliverer ships them: by default one separate process draining in a loop (`crm_sync.tasks.drain`,
   what a busy worker does), or with --deliverer celery a real Celery worker (solo pool) fed by the
   on-commit listener, as in production. Every 0.25 s a sampler reads the age of the oldest event not
   yet delivered; it prints p50/p99/max of that age, and of each event's time from commit to arrival
   in the CRM.

    .venv/bin/python bench/crm_bench.py                       # both parts
    .venv/bin/python bench/crm_bench.py --part lag --rate 40 --threads 3

It DROPS and recreates the database named by --database-url (default tessera_bench_crm on the local
PostgreSQL; the name must contain "bench") and migrates it.
"""
import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scratch_database import recreate_database  # noqa: E402  (bench/, the script's own folder)

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.crm.worker_settings"  # the project's settings + the stand-in

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tessera_bench_crm"
API_KEY = "sk-bench-0123456789"
SAMPLE_SECONDS = 0.25


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s, max {max(values):.2f} s"


def seed_cards(count: int):
    from tests.factories import make_card, make_merchant, make_program, make_store

    merchant = make_merchant(name=f"CRM bench {uuid.uuid4().hex[:6]}")
    store = make_store(merchant)
    program = make_program(merchant)
    return merchant, store, [make_card(program) for _ in range(count)]


# -- part 1 ----------------------------------------------------------------------------------------


def throughput(options, rows: list | None = None) -> None:
    import datetime as dt

    from django.utils import timezone

    from crm_sync.delivery import deliver_batch
    from crm_sync.fanout import fan_out
    from tests.crm.crm_test_connector import connect
    from tests.crm.fake_crm import FakeCrm
    from wallet.models import DomainEvent

    merchant, _store, cards = seed_cards(options.cards)
    written = timezone.now() - dt.timedelta(minutes=5)  # settled: one fan-out pass moves past them
    DomainEvent.objects.bulk_create([
        DomainEvent(event_type="wallet.points.changed", merchant=merchant, customer_id=card.wallet.customer_id,
                    card_id=card.pk, payload={"card_number": card.number, "delta": 10, "balance": 10 * n},
                    occurred_at=written, recorded_at=written)
        for n, card in ((n, cards[n % len(cards)]) for n in range(options.events))
    ], batch_size=1000)
    print(f"throughput: {options.events} events of {len(cards)} customers; batch size, events/s, ms per batch")
    for size in options.batch_sizes:
        crm = FakeCrm(api_key=API_KEY, latency=options.crm_latency).start()
        try:
            connection = connect(merchant, crm.url, API_KEY, event_types=["wallet.points.changed"], batch_size=size)
            started = time.perf_counter()
            while fan_out(connection.pk):
                pass  # up to 20 pages of 5,000 events per call
            fanned = time.perf_counter() - started
            calls = []
            while True:
                call_started = time.perf_counter()
                report = deliver_batch(connection.pk)
                calls.append(time.perf_counter() - call_started)
                if report.sent == 0:
                    break
            elapsed = time.perf_counter() - started
            assert len(crm.receipts) == options.events and set(crm.receipts.values()) == {1}, "lost or doubled"
            if rows is not None:
                rows.append({"batch_size": size, "events": options.events, "seconds": round(elapsed, 3),
                             "events_per_s": round(options.events / elapsed, 1), "fan_out_s": round(fanned, 3),
                             "ms_per_batch_p50": round(statistics.median(calls) * 1000, 2),
                             "requests": len(crm.batches), "crm_latency_s": options.crm_latency})
            print(f"  batch {size:>3}: {options.events / elapsed:7.0f} events/s ({elapsed:.1f} s, fan-out "
                  f"{fanned:.2f} s), {statistics.median(calls) * 1000:.1f} ms per batch (p50), "
                  f"{len(crm.batches)} requests")
        finally:
            crm.stop()


# -- part 2 ----------------------------------------------------------------------------------------


def oldest_undelivered_age(merchant_id, connection_id, after_event_id: int) -> float:
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM now() - min(e.recorded_at)) FROM wallet_domainevent e "
            "WHERE e.merchant_id = %s AND e.id > %s AND NOT EXISTS (SELECT 1 FROM crm_sync_crmdelivery d "
            "WHERE d.event_id = e.id AND d.connection_id = %s AND d.status = 'delivered')",
            [merchant_id, after_event_id, connection_id],
        )
        age = cursor.fetchone()[0]
    return float(age or 0.0)


def start_deliverer(options, connection_id, queue: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": options.database_url}
    if options.deliverer == "celery":
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue,
                   "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"]
    else:
        command = [sys.executable, __file__, "--drain-loop", str(connection_id)]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def forget_queue(broker_url: str, queue: str) -> None:
    """Drop the on-commit tasks the worker had no need to run, and the queue (Redis; a SQLite
    broker is a temporary file)."""
    if broker_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(broker_url)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def produce(cards, store, currency: str, rate: float, seconds: float, done: list) -> None:
    from django.db import connection as db

    from wallet.services import PurchaseRequest, record_purchase

    started, n = time.monotonic(), 0
    try:
        while time.monotonic() - started < seconds:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sale = f"bench-{uuid.uuid4().hex}"
            record_purchase(cards[n % len(cards)], PurchaseRequest(external_id=sale, amount=1234, currency=currency,
                                                                   store_id=store.pk), idempotency_key=sale)
            n += 1
    finally:
        db.close()
        done.append(n)


def lag(options) -> None:
    from config.celery import app
    from crm_sync.outbox import forget_connected_merchants
    from tests.crm.crm_test_connector import connect
    from tests.crm.fake_crm import FakeCrm
    from wallet.models import DomainEvent

    queue = f"crm-bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue  # before anything is sent: the on-commit tasks go to our worker only
    merchant, store, cards = seed_cards(options.cards)
    crm = FakeCrm(api_key=API_KEY, latency=options.crm_latency).start()
    connection = connect(merchant, crm.url, API_KEY, batch_size=options.lag_batch_size)
    forget_connected_merchants()  # the seeding's commits asked before the connection existed
    first_event = DomainEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    deliverer = start_deliverer(options, connection.pk, queue)
    samples, done = [], []
    producers = [threading.Thread(target=produce, args=(cards[i::options.threads], store, merchant.currency,
                                                        options.rate / options.threads, options.seconds, done))
                 for i in range(options.threads)]
    try:
        time.sleep(3)  # the deliverer starts up
        started = time.monotonic()
        for thread in producers:
            thread.start()
        age = partial(oldest_undelivered_age, merchant.pk, connection.pk, first_event)
        while any(t.is_alive() for t in producers) or age() > 0:
            samples.append(age())
            time.sleep(SAMPLE_SECONDS)
            if time.monotonic() - started > options.seconds + 300:
                sys.exit("the deliverer did not catch up within 5 minutes")
        elapsed = time.monotonic() - started
    finally:
        deliverer.send_signal(signal.SIGTERM)
        deliverer.wait(timeout=30)
        crm.stop()
        forget_queue(app.conf.broker_url, queue)
    events = list(DomainEvent.objects.filter(merchant=merchant, id__gt=first_event).values_list("id", "recorded_at"))
    arrival = [crm.arrived_at[str(i)] - recorded.timestamp() for i, recorded in events]
    doubled = sum(1 for i, _ in events if crm.receipts[str(i)] != 1)
    print(f"lag ({options.deliverer}): {sum(done)} purchases in {options.seconds:.0f} s "
          f"({sum(done) / options.seconds:.1f}/s asked {options.rate:g}/s), {len(events)} events, "
          f"batch {options.lag_batch_size}, all delivered {elapsed:.1f} s after the start; {doubled} doubled")
    print(f"  oldest undelivered event age ({len(samples)} samples): {spread(samples)}")
    print(f"  commit to arrival in the CRM, per event: {spread(arrival)}")


def drain_loop(connection_id: str) -> None:
    """The deliverer process of part 2: drain until told to stop, a short nap when nothing is due."""
    import logging

    from crm_sync.tasks import drain

    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        if drain(connection_id) == 0:
            time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="dropped and recreated")
    parser.add_argument("--part", choices=["all", "throughput", "lag"], default="all")
    parser.add_argument("--events", type=int, default=3000, help="part 1: outbox events to deliver")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 50, 100])
    parser.add_argument("--cards", type=int, default=100, help="customers with cards")
    parser.add_argument("--rate", type=float, default=20.0, help="part 2: purchases per second, all threads")
    parser.add_argument("--threads", type=int, default=2, help="part 2: producer threads")
    parser.add_argument("--seconds", type=float, default=30.0, help="part 2: how long purchases go on")
    parser.add_argument("--lag-batch-size", type=int, default=100)
    parser.add_argument("--crm-latency", type=float, default=0.0, help="seconds the fake CRM takes per batch")
    parser.add_argument("--deliverer", choices=["loop", "celery"], default="loop",
                        help="part 2: a drain loop process, or a Celery worker fed on commit (CELERY_BROKER_URL)")
    parser.add_argument("--json", action="store_true", help="print the throughput rows as JSON only (text to stderr)")
    parser.add_argument("--drain-loop", metavar="CONNECTION_ID", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.drain_loop:
        import django

        django.setup()
        return drain_loop(options.drain_loop)
    recreate_database(options.database_url)
    os.environ["DATABASE_URL"] = options.database_url
    if not os.environ.get("CELERY_BROKER_URL"):
        broker = Path(tempfile.mkdtemp(prefix="crm-bench-")) / "broker.sqlite3"
        os.environ["CELERY_BROKER_URL"] = f"sqla+sqlite:///{broker}"  # not the development broker in var/
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings

    if options.deliverer != "celery":
        settings.TESSERA_OUTBOX_LISTENERS = []  # the drain loop ships the events: no on-commit tasks
    from django.core.management import call_command

    rows = []
    with contextlib.redirect_stdout(sys.stderr) if options.json else contextlib.nullcontext():
        call_command("migrate", verbosity=0)
        if options.part in ("all", "throughput"):
            throughput(options, rows)
        if options.part in ("all", "lag"):
            lag(options)
    if options.json:
        print(json.dumps({"throughput": rows}))


if __name__ == "__main__":
    main()
