"""A PostgreSQL restart in the middle of a counter load run (issue 10, "Faults"), for run_all --db-restart.

Threads drive the counter mix against gunicorn (each sale: a scan of the card number, then a purchase
whose Idempotency-Key is also its external id) for `--db-restart-seconds` (default 30); a third of the
way in, `--pg-restart-cmd` restarts the cluster. Every answer is kept: when it started, its status,
and whether an error had the JSON error shape. A dropped or refused HTTP connection is counted apart:
it has no body to judge. Afterwards every purchase that failed is retried with its key and body,
as a till would, and must be answered 201 (a replay, or recorded now). Then, in the database, the
sales with points must be exactly the keys that succeeded (none doubled, none lost), and check_ledger
must pass. The gunicorn workers must be the same processes at the end: the service recovered by
itself, and the last third of the run must have had no error. The tills are Python threads (httpx),
not wrk: every answer's body and key must be kept, and the rate matters less than the accounting.

The command restarts a whole cluster: run it against a cluster of its own (see the README), never one
other work shares. Kept connections (DATABASE_CONN_MAX_AGE) die with the restart; with health checks
off each worker's first request after it answers 500 in the error shape, which this run counts.
"""
import random
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from harness import loadgen

SCAN_PATH = "/api/pos/v1/scan/"
PURCHASE_PATH = "/api/pos/v1/purchases/"
DEFAULT_RESTART_COMMAND = "pg_ctlcluster --skip-systemctl-redirect 15 main restart"
THREADS = 8  # tills: enough to keep the workers busy on 2 cores with a Python client


@dataclass
class Answer:
    started: float  # seconds since the run began
    finished: float
    kind: str  # "scan" or "purchase"
    status: int | None  # None: the HTTP connection failed (refused, reset)
    shaped: bool  # an error with the {"error": {"code", "message", ...}} body
    detail: str = ""
    key: str = ""  # a purchase's Idempotency-Key (and external id)
    code: str = ""  # the card number it was rung up on
    device: str = ""  # the till's device key

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


def error_shaped(response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    try:
        error = response.json().get("error")
    except ValueError:
        return False
    return isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)


def post(client, path: str, body: dict, headers: dict, epoch: float, kind: str) -> Answer:
    import httpx

    started = time.monotonic() - epoch
    try:
        response = client.post(path, json=body, headers=headers)
    except httpx.TransportError as error:
        return Answer(started, time.monotonic() - epoch, kind, None, False, type(error).__name__)
    failed = response.status_code >= 400
    return Answer(started, time.monotonic() - epoch, kind, response.status_code,
                  failed and error_shaped(response), response.text[:200] if failed else "")


def purchase_body(code: str, key: str, currency: str, amount: int) -> dict:
    return {"code": code, "external_id": key, "amount": amount, "currency": currency}


class Till(threading.Thread):
    """One device: scan a card, then ring up a sale on it, until stopped."""

    def __init__(self, number: int, base_url: str, device_key: str, codes: list[str], currency: str, amount: int,
                 epoch: float, run_id: str, answers: list[Answer]):
        super().__init__(daemon=True)
        self.number, self.base_url, self.device_key, self.codes = number, base_url, device_key, codes
        self.currency, self.amount, self.epoch, self.run_id, self.answers = currency, amount, epoch, run_id, answers
        self.stopping = threading.Event()
        self.random = random.Random(number)

    def run(self):
        import httpx

        headers = {"Authorization": f"Device {self.device_key}"}
        with httpx.Client(base_url=self.base_url, timeout=30, headers=headers) as client:
            sale = 0
            while not self.stopping.is_set():
                code = self.random.choice(self.codes)
                self.answers.append(post(client, SCAN_PATH, {"code": code}, {}, self.epoch, "scan"))
                key = f"{self.run_id}-{self.number}-{sale}"
                sale += 1
                answer = post(client, PURCHASE_PATH, purchase_body(code, key, self.currency, self.amount),
                              {"Idempotency-Key": key}, self.epoch, "purchase")
                answer.key, answer.code, answer.device = key, code, self.device_key
                self.answers.append(answer)


def restart_database(command: str) -> dict:
    started = time.monotonic()
    finished = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=180)
    return {"command": command, "returncode": finished.returncode, "seconds": round(time.monotonic() - started, 2),
            "output": (finished.stdout + finished.stderr).strip()[-500:]}


def retry_failed(base_url: str, answers: list[Answer], currency: str, amount: int) -> dict[str, tuple]:
    """Every purchase that failed, again with its key and body, as its till retries it:
    {key: (status, replayed)}."""
    import httpx

    outcomes = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for answer in answers:
            if answer.kind != "purchase" or answer.ok:
                continue
            response = client.post(PURCHASE_PATH, json=purchase_body(answer.code, answer.key, currency, amount),
                                   headers={"Authorization": f"Device {answer.device}", "Idempotency-Key": answer.key})
            outcomes[answer.key] = (response.status_code, response.headers.get("Idempotent-Replayed") == "true")
    return outcomes


def run(options, world, workdir: Path, server_class, amount: int, check_ledger) -> dict:
    """The whole step; `server_class` is counter_http_bench.Server, `check_ledger` run_all's."""
    from django.db import connection

    seconds = options.db_restart_seconds
    restart_at = seconds / 3
    server_options = SimpleNamespace(workers=options.workers, worker_class="sync", worker_threads=1, debug=False)
    server = server_class(server_options, options.database_url, workdir)
    run_id = f"dbr{int(time.time())}"
    answers: list[Answer] = []
    codes = [world.card_numbers[card] for card in world.card_ids[:-1]]
    connection.close()  # this process's own kept connection would die with the restart
    try:
        server.wait_healthy()
        pids_before = loadgen.child_pids(server.process.pid)
        print(f"database restart under load: {seconds:g} s, restart at {restart_at:g} s "
              f"({options.pg_restart_cmd}) ...", flush=True)
        epoch = time.monotonic()
        tills = [Till(n, server.base_url, world.devices[n % len(world.devices)].key, codes, world.currency, amount,
                      epoch, run_id, answers) for n in range(THREADS)]
        for till in tills:
            till.start()
        time.sleep(restart_at)
        began = time.monotonic() - epoch
        restart = restart_database(options.pg_restart_cmd)
        restart.update(began_s=round(began, 2), ended_s=round(time.monotonic() - epoch, 2))
        time.sleep(max(0.0, seconds - (time.monotonic() - epoch)))
        for till in tills:
            till.stopping.set()
        for till in tills:
            till.join(timeout=60)
        elapsed = time.monotonic() - epoch
        pids_after = loadgen.child_pids(server.process.pid)
        retries = retry_failed(server.base_url, answers, world.currency, amount)
    finally:
        server.stop()
    result = summarize(answers, restart, elapsed, retries)
    result["gunicorn_workers"] = {"before": pids_before, "after": pids_after, "same": pids_before == pids_after}
    result.update(written(world, run_id, answers, retries))
    result["check_ledger"] = check_ledger()
    result["passed"] = passed(result)
    return result


def summarize(answers: list[Answer], restart: dict, elapsed: float, retries: dict) -> dict:
    """Counts by phase (before the restart command, while it ran, after it), errors, and recovery."""
    began, ended = restart["began_s"], restart["ended_s"]
    phases = {"before": [a for a in answers if a.started < began],
              "during": [a for a in answers if began <= a.started < ended],
              "after": [a for a in answers if a.started >= ended]}
    errors = [a for a in answers if not a.ok]
    http_errors = [a for a in errors if a.status is not None]
    first_success = min((a.finished for a in answers if a.ok and a.started >= ended), default=None)
    last_error = max((a.finished for a in errors), default=None)
    first_error = min((a.started for a in errors), default=None)
    # The tills' outage: from the first failed request to the first success after the last failure.
    back = min((a.finished for a in answers if a.ok and a.started >= last_error), default=None) \
        if last_error is not None else None
    tail_from = elapsed - elapsed / 3
    statuses: dict[str, int] = {}
    for answer in errors:
        label = str(answer.status) if answer.status is not None else answer.detail
        statuses[label] = statuses.get(label, 0) + 1
    return {
        "seconds": round(elapsed, 1), "threads": THREADS, "restart": restart,
        "requests": len(answers), "per_second": round(len(answers) / elapsed, 1) if elapsed else 0.0,
        "phases": {name: {"requests": len(rows), "errors": sum(not a.ok for a in rows)}
                   for name, rows in phases.items()},
        "errors": len(http_errors), "connection_errors": len(errors) - len(http_errors),
        "error_statuses": statuses, "errors_all_shaped": all(a.shaped for a in http_errors),
        "error_samples": sorted({a.detail for a in http_errors})[:3],
        "first_success_after_restart_s": None if first_success is None else round(first_success - ended, 2),
        "outage_s": 0.0 if first_error is None else None if back is None else round(back - first_error, 2),
        "back_after_restart_began_s": None if back is None else round(back - began, 2),
        "last_error_after_restart_s": None if last_error is None else round(last_error - ended, 2),
        "tail_seconds": round(elapsed - tail_from, 1),
        "tail_errors": sum(1 for a in errors if a.started >= tail_from),
        "purchases_failed": len(retries),
        "retries": {"fresh": sum(1 for s, r in retries.values() if s == 201 and not r),
                    "replayed": sum(1 for s, r in retries.values() if s == 201 and r),
                    "failed": sum(1 for s, _ in retries.values() if s != 201)},
    }


def written(world, run_id: str, answers: list[Answer], retries: dict) -> dict:
    """What the database holds for the run's sales, against the keys a till was told succeeded."""
    from django.db import connection
    from django.db.models import Count

    from wallet.models import LedgerEntry, Purchase

    succeeded = {a.key for a in answers if a.kind == "purchase" and a.ok}
    succeeded |= {key for key, (status, _) in retries.items() if status == 201}
    sales = Purchase.objects.filter(merchant_id=world.merchant_id, external_id__startswith=f"{run_id}-")
    with_points = set(sales.filter(points_earned__gt=0).values_list("external_id", flat=True))
    doubled = (LedgerEntry.objects.filter(purchase__in=sales).values("purchase_id").annotate(n=Count("id"))
               .filter(n__gt=1).count())
    sale_count = sales.count()
    connection.close()
    return {"keys_succeeded": len(succeeded), "purchases_with_points": len(with_points), "purchases": sale_count,
            "purchases_lost": len(succeeded - with_points), "purchases_unanswered": len(with_points - succeeded),
            "purchases_with_two_entries": doubled}


def passed(result: dict) -> bool:
    """The issue's acceptance: clean errors, every failed sale retried into exactly one, the ledger
    balanced, and the same workers answering without error by the end."""
    return (result["errors_all_shaped"] and result["tail_errors"] == 0 and result["retries"]["failed"] == 0
            and result["purchases_with_points"] == result["keys_succeeded"] == result["purchases"]
            and result["purchases_lost"] == 0 and result["purchases_with_two_entries"] == 0
            and result["check_ledger"] == "ok" and result["gunicorn_workers"]["same"]
            and result["restart"]["returncode"] == 0 and result["first_success_after_restart_s"] is not None)
