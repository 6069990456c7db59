"""The hardening issue's load run: a realistic counter mix with webhooks arriving at the same time.

For `--hardening-seconds` (default 60) wrk drives, per ten requests, 4 scans, 4 purchases, 1 redemption and
1 wallet read (cards list or history page, alternating) over 32 connections, while a thread posts signed
sales to a generic POS connection's webhook (standard-webhooks signatures, `--webhook-rate` a second)
that a real Celery worker (Redis broker) processes into purchases. gunicorn writes an access log with
each request's time, from which every endpoint gets its own count, errors and p50/p99 (server time:
from reading the request to writing the answer). After the run every webhook sale must have earned
exactly once; run_all's check_ledger then covers the whole database.
"""
import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from harness.floor import percentile

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = (("scan", "/api/pos/v1/scan/"), ("purchase", "/api/pos/v1/purchases/"),
             ("redeem", "/api/pos/v1/redemptions/"), ("wallet", "/api/v1/cards/"), ("webhook", "/hooks/pos/"))
ACCESS_FORMAT = "%(m)s %(U)s %(s)s %(D)s"  # method, path, status, microseconds


def generic_connection(world) -> tuple[str, str]:
    """A generic (standard-webhooks) POS connection for the bench merchant: (connection id, secret)."""
    from merchants.models import Merchant, Store
    from pos_integration.connections import create_connection

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    merchant = Merchant.objects.get(pk=world.merchant_id)
    connection = create_connection(merchant, "generic", "bench webhooks", {"signing_secret": secret},
                                   store=Store.objects.get(pk=world.store_id))
    return str(connection.pk), secret


class WebhookSender(threading.Thread):
    """Posts one signed sale every 1/rate seconds until stopped; counts the answers."""

    def __init__(self, base_url: str, connection_id: str, secret: str, card_numbers: list[str], rate: float,
                 currency: str, run_id: str):
        super().__init__(daemon=True)
        self.url = f"{base_url}/hooks/pos/{connection_id}/"
        self.secret, self.numbers, self.interval = secret, card_numbers, 1.0 / rate
        self.currency, self.run_id = currency, run_id
        self.stopping = threading.Event()
        self.sent, self.statuses, self.latencies = [], {}, []

    def run(self):
        import httpx

        from core.standard_webhooks import sign

        with httpx.Client(timeout=10) as client:
            next_at = time.monotonic()
            while not self.stopping.is_set():
                sale_id = f"{self.run_id}-{len(self.sent)}"
                number = self.numbers[len(self.sent) % len(self.numbers)]
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                body = json.dumps({"type": "purchase.completed", "timestamp": now,
                                   "data": {"id": sale_id, "amount": 1500, "currency": self.currency,
                                            "occurred_at": now, "customer": {"card_number": number}}})
                headers = {**sign(self.secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body),
                           "Content-Type": "application/json"}
                started = time.perf_counter()
                try:
                    status = client.post(self.url, content=body, headers=headers).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                self.latencies.append(time.perf_counter() - started)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.sent.append(sale_id)
                next_at += self.interval
                self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def start_worker(workdir: Path) -> subprocess.Popen:
    """A Celery worker on the run's broker (CELERY_BROKER_URL, set by run_all), two processes."""
    log = open(workdir / "celery.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING", "--concurrency", "2",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )


def wait_processed(connection_id: str, expected: int, timeout: float = 120.0) -> int:
    """How many of the connection's deliveries were processed, waiting until all are or `timeout`."""
    from django.db import connection as db

    from pos_integration.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    while True:
        done = WebhookDelivery.objects.filter(connection_id=connection_id,
                                              status=WebhookDelivery.Status.PROCESSED).count()
        db.close()
        if done >= expected or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def per_endpoint(access_log: Path) -> dict:
    """Count, non-2xx answers and p50/p99 (ms) per endpoint from gunicorn's access log."""
    times: dict[str, list[float]] = {name: [] for name, _ in ENDPOINTS}
    errors = dict.fromkeys(times, 0)
    for line in access_log.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, status, micros = parts
        name = next((n for n, prefix in ENDPOINTS if path.startswith(prefix)), None)
        if name is None:
            continue
        times[name].append(int(micros) / 1000)
        if not status.startswith("2"):
            errors[name] += 1
    return {name: {"requests": len(values), "errors": errors[name], "p50_ms": _ms(percentile(values, 0.50)),
                   "p99_ms": _ms(percentile(values, 0.99))} for name, values in times.items()}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


SEGMENT_SECONDS = 20  # pass tokens rotate every 30 s: each segment gets freshly minted ones
SPEND_CARDS_PER_SEGMENT = 600  # two tokens each (this step and the next): more than a segment redeems


def run(options, world, workdir: Path, server_class, loadgen, data_file) -> dict:
    """The whole hardening run; `server_class` is counter_http_bench.Server, `data_file` run_all's.

    wrk runs in segments of SEGMENT_SECONDS, each with pass tokens minted just before it (a token lives
    30 s and a redemption spends it), for redemptions on cards no other segment spends from."""
    from wallet.models import Purchase

    connection_id, secret = generic_connection(world)
    access_log = workdir / "access.log"
    server_options = SimpleNamespace(workers=options.workers, worker_class="sync", worker_threads=1, debug=False,
                                     access_log=str(access_log), access_log_format=ACCESS_FORMAT)
    server = server_class(server_options, options.database_url, workdir)
    worker = start_worker(workdir)
    cards = world.card_ids[:500]
    numbers = [world.card_numbers[c] for c in cards]
    segments = max(1, round(options.hardening_seconds / SEGMENT_SECONDS))
    spendable = world.card_ids[-1 - segments * SPEND_CARDS_PER_SEGMENT:-1]
    run_id = uuid.uuid4().hex[:10]
    runs = []
    try:
        server.wait_healthy()
        print(f"hardening mix for {options.hardening_seconds:g} s with webhooks at {options.webhook_rate:g}/s ...",
              flush=True)
        sender = WebhookSender(server.base_url, connection_id, secret, numbers, options.webhook_rate, world.currency,
                               run_id)
        access_log.write_text("")
        sender.start()
        for index in range(segments):
            spend = spendable[index * SPEND_CARDS_PER_SEGMENT:(index + 1) * SPEND_CARDS_PER_SEGMENT]
            data = data_file(workdir, world, "hardening", cards, spend, f"run{index}", True, True)
            runs.append(loadgen.run_wrk(server.base_url, "hardening", data, 32,
                                        options.hardening_seconds / segments, server.process.pid, f"{run_id}{index}"))
        sender.stop()
        processed = wait_processed(connection_id, len(sender.sent))
        earned = Purchase.objects.filter(merchant_id=world.merchant_id, external_id__in=sender.sent).count()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.stop()
    endpoints = per_endpoint(access_log)
    client_p99 = percentile(sender.latencies, 0.99)
    endpoints["webhook"]["client_p99_ms"] = None if client_p99 is None else _ms(1000 * client_p99)
    requests, seconds = sum(r.requests for r in runs), sum(r.seconds for r in runs)
    wrk_errors = sum(r.errors for r in runs)
    unearned = len(sender.sent) - earned
    return {
        "seconds": round(seconds, 1), "connections": 32, "segments": segments, "requests": requests,
        "per_second": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": max(r.p50_ms for r in runs), "p99_ms": max(r.p99_ms for r in runs),
        "wrk_errors": wrk_errors, "error_samples": [e for r in runs for e in r.error_samples][:5],
        "endpoints": endpoints, "webhooks_sent": len(sender.sent),
        "webhook_answers": {str(k): v for k, v in sender.statuses.items()},
        "webhooks_processed": processed, "webhook_sales_earned": earned,
        "errors": wrk_errors + sum(row["errors"] for row in endpoints.values()) + unearned,
    }
