"""`make bench`: every benchmark in one reproducible run, with the SQL floor, into bench/results.json.

    .venv/bin/python bench/run_all.py            # the whole run, about 10 to 15 minutes on 2 cores
    .venv/bin/python bench/run_all.py --quick    # shorter runs, fewer cards, a 10^5-entry reconciliation

1. Seeds one merchant into a scratch PostgreSQL database (dropped and recreated; its name must contain
   "bench"): one till and one cashier per connection, --cards customers with a card (bench/harness/seed.py).
2. The floor: pgbench runs bench/floor/earn.sql (the transaction a purchase commits) on random cards and
   on one hot card, and bench/floor/scan.sql (a token scan's reads), at 8 and 32 clients.
3. gunicorn serves config.wsgi on 127.0.0.1 (one sync worker per core, DEBUG off, Redis as the cache)
   and wrk (bench/loadgen/tessera.lua) drives each scenario after a warm-up: scan (pass token -> card
   summary), purchase on random cards, purchase on one hot card, redeem (live token, cashier PIN), the
   counter mix (per 10 sales: 7 scan + purchase, 2 scan, 1 scan + redeem), at 8 and 32 connections;
   then the wallet reads (cards list, history page) with customer JWTs and the pass images over HTTP.
   Every figure is also given as a ratio to its floor from the same run.
4. pass_bench (tokens and images per second, one core), crm_bench's throughput part (outbox events to
   a local fake CRM, batches of 100), reconciliation_bench (10^6 entries; --reuse keeps its data).
5. check_ledger on the run's database, the issue's targets, one table, bench/results.json.
6. Only with --db-restart: the counter mix for --db-restart-seconds while --pg-restart-cmd restarts the
   database's PostgreSQL cluster (bench/harness/db_restart.py). Point --database-url at a cluster of its own.

No scenario here enqueues Celery tasks (no CRM connection, no wallet push configured), so no worker
runs beside gunicorn; crm_bench drives the delivery code in its own process.
"""
import argparse
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

from counter_http_bench import Server, cpu_idle_percent  # noqa: E402
from harness import db_restart, floor, hardening, loadgen, report, seed  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
from scratch_database import recreate_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tessera_bench_all"
SCAN_POOL = 2000  # cards whose tokens the scan and mix scenarios show
IMAGE_CARDS = 50  # a pass image per card and period: what a cache can keep
COUNTER = ("scan", "purchase", "hot_card", "redeem", "mix")
FLOOR_OF = {"scan": "scan", "purchase": "earn", "hot_card": "earn_hot", "redeem": "earn", "mix": "earn",
            "wallet": "scan", "qr_png": "scan", "qr_svg": "scan", "barcode_png": "scan"}


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs and small data: a smoke test")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="dropped and recreated")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="the server's cache (flushed)")
    parser.add_argument("--seconds", type=float, help="measured seconds per scenario (default 10, quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of load before each measurement (default 3, quick 1)")
    parser.add_argument("--cards", type=int, help="customers with a card (default 30000, quick 6000)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32], help="for the counter scenarios")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="gunicorn sync workers (default: one per core)")
    parser.add_argument("--only", nargs="+", help="run only these HTTP scenarios (and every floor)")
    parser.add_argument("--skip", nargs="+", default=[],
                        choices=["hardening", "passes", "images", "crm", "reconciliation"])
    parser.add_argument("--hardening-seconds", type=float,
                        help="the hardening mix with webhooks (default 60, quick 20)")
    parser.add_argument("--webhook-rate", type=float, default=10.0, help="signed POS webhooks a second during it")
    parser.add_argument("--db-restart", action="store_true",
                        help="also restart the database's cluster under load (it must be a cluster of its own)")
    parser.add_argument("--pg-restart-cmd", default=db_restart.DEFAULT_RESTART_COMMAND,
                        help="restarts the PostgreSQL cluster --database-url is on")
    parser.add_argument("--db-restart-seconds", type=float, default=30.0, help="the load run; restart at a third")
    parser.add_argument("--output", default=str(BENCH / "results.json"))
    options = parser.parse_args()
    options.seconds = options.seconds or (3.0 if options.quick else 10.0)
    options.warmup = options.warmup or (1.0 if options.quick else 3.0)
    options.cards = options.cards or (6000 if options.quick else 30000)
    options.hardening_seconds = options.hardening_seconds or (20.0 if options.quick else 60.0)
    if "bench" not in options.database_url.rsplit("/", 1)[-1]:
        parser.error("the database's name must contain 'bench'")
    return options


def check_tools(options) -> None:
    missing = [tool for tool in ("wrk", "pgbench") if not __import__("shutil").which(tool)]
    if missing:
        sys.exit(f"make bench needs {' and '.join(missing)} (Debian: apt-get install {' '.join(missing)})")
    import redis

    try:
        redis.Redis.from_url(options.redis_url).ping()
    except redis.RedisError as error:
        sys.exit(f"Redis at {options.redis_url} does not answer: {error}")


def prepare(options):
    recreate_database(options.database_url)
    os.environ.update(DATABASE_URL=options.database_url, REDIS_URL=options.redis_url, DJANGO_DEBUG="false",
                      DJANGO_SETTINGS_MODULE="config.settings")
    os.environ.pop("TESSERA_ENV", None)
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")  # nothing is sent; never the SQLite file
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    redis.Redis.from_url(options.redis_url).flushdb()  # this run's cache only: its own database number
    call_command("migrate", verbosity=0)


# ---------------------------------------------------------------------------------------------
# The floor


def run_floors(options, world: seed.World) -> list[dict]:
    device_ids = [d.pk for d in world.devices]
    common = {"merchant": world.merchant_id, "device_min": min(device_ids), "device_max": max(device_ids)}
    cases = [
        ("earn", "earn.sql", {"store": world.store_id, "card_min": world.card_ids[0],
                              "card_max": world.card_ids[-2]}),
        ("earn_hot", "earn.sql", {"store": world.store_id, "card_min": world.hot_card, "card_max": world.hot_card}),
        ("scan", "scan.sql", {"signing_key": world.signing_key_pk, "card_min": world.card_ids[0],
                              "card_max": world.card_ids[-1]}),
    ]
    floors = []
    for name, script, variables in cases:
        for clients in options.connections:
            print(f"floor {name} at {clients} clients ...", flush=True)
            result = floor.run_pgbench(options.database_url, script, clients, options.seconds, {**common, **variables})
            floors.append({"name": name, **result})
    return floors


# ---------------------------------------------------------------------------------------------
# HTTP scenarios


def data_file(workdir: Path, world: seed.World, scenario: str, cards: list[int], spend: list[int], label: str,
              with_tokens: bool, with_jwts: bool) -> Path:
    """The records tessera.lua reads; tokens are minted now, so they are fresh when wrk starts."""
    tokens = seed.mint_tokens(world, cards) if with_tokens else ["-"] * len(cards)
    jwts = seed.mint_jwts(world, cards) if with_jwts else ["-"] * len(cards)
    spent = seed.mint_tokens(world, spend) + seed.mint_tokens(world, spend, step_offset=1) if spend else []
    lines = ["set threads 2", f"set pin {seed.PIN}", f"set reward {world.reward_id}",
             f"set currency {world.currency}", f"set amount {seed.AMOUNT}"]
    lines += [f"device {d.key} {d.cashier_id}" for d in world.devices]
    lines += [f"card {c} {world.card_numbers[c]} {t} {j}" for c, t, j in zip(cards, tokens, jwts, strict=True)]
    lines += [f"spend {token}" for token in spent]
    path = workdir / f"{scenario}-{label}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


class SpendSlices:
    """Cards whose (card, time step) tokens no other run has spent: each run takes a fresh slice."""

    def __init__(self, card_ids: list[int], runs: int):
        self.cards, self.size, self.next = card_ids, max(1, len(card_ids) // max(runs, 1)), 0

    def take(self) -> list[int]:
        start = self.next
        self.next += self.size
        return self.cards[start:start + self.size]


def plan(options) -> list[tuple[str, int]]:
    runs = [(name, connections) for name in COUNTER for connections in options.connections]
    runs += [("wallet", 32), ("qr_png", 32), ("qr_svg", 32), ("barcode_png", 32)]
    return [run for run in runs if not options.only or run[0] in options.only]


def count_purchases(merchant_id: int) -> int:
    from wallet.models import Purchase

    return Purchase.objects.filter(merchant_id=merchant_id).count()


def run_http(options, world: seed.World, workdir: Path, floors: list[dict]) -> tuple[list[dict], dict]:
    import random

    from django.db import connection

    runs = plan(options)
    history = world.card_ids[:seed.HISTORY_CARDS]
    pool = random.Random(9).sample(world.card_ids[:-1], min(SCAN_POOL, len(world.card_ids) - 1))
    spending = [r for r in runs if r[0] in ("redeem", "mix")]
    slices = SpendSlices(world.card_ids[seed.HISTORY_CARDS:-1], 2 * len(spending))
    server_options = SimpleNamespace(workers=options.workers, worker_class="sync", worker_threads=1, debug=False)
    server = Server(server_options, options.database_url, workdir)
    scenarios, comparison = [], {}
    try:
        server.wait_healthy()
        for name, connections in runs:
            cards, tokens, jwts = {
                "scan": (pool, True, False), "purchase": (world.card_ids[:-1], False, False),
                "hot_card": ([world.hot_card], False, False), "redeem": ([], False, False),
                "mix": (pool, True, False), "wallet": (history, False, True),
                "qr_png": (history[:IMAGE_CARDS], False, True), "qr_svg": (history[:IMAGE_CARDS], False, True),
                "barcode_png": (history[:IMAGE_CARDS], False, True),
            }[name]
            lua_name = "purchase" if name == "hot_card" else name
            spends = name in ("redeem", "mix")
            settle(server.process.pid)
            print(f"{name} at {connections} connections (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
            run_id = uuid.uuid4().hex[:10]
            before = count_purchases(world.merchant_id)
            warm = data_file(workdir, world, name, cards, slices.take() if spends else [], "warm", tokens, jwts)
            warmup = loadgen.run_wrk(server.base_url, lua_name, warm, connections, options.warmup,
                                     server.process.pid, run_id + "w")
            measured_file = data_file(workdir, world, name, cards, slices.take() if spends else [], "run", tokens, jwts)
            run = loadgen.run_wrk(server.base_url, lua_name, measured_file, connections, options.seconds,
                                  server.process.pid, run_id)
            written = count_purchases(world.merchant_id) - before
            connection.close()
            floor_row = next((f for f in floors if f["name"] == FLOOR_OF[name]
                              and f["clients"] == (connections if name in COUNTER else max(options.connections))),
                             None)
            row = {
                "name": name, "connections": connections, "requests": run.requests, "seconds": round(run.seconds, 2),
                "per_second": round(run.per_second, 1), "p50_ms": run.p50_ms, "p90_ms": run.p90_ms,
                "p99_ms": run.p99_ms, "max_ms": run.max_ms, "errors": run.errors, "error_detail": run.error_detail,
                "error_samples": run.error_samples, "warmup_errors": warmup.errors,
                "floor": floor_row and f"{floor_row['name']}@{floor_row['clients']}",
                "floor_tps": floor_row and floor_row["tps"],
                "ratio_to_floor": floor_row and round(run.per_second / floor_row["tps"], 4),
                "wrk_cpu_s": run.wrk_cpu_s, "server_cpu_s": run.server_cpu_s,
                "wrk_cpu_share_of_server": round(run.wrk_cpu_s / run.server_cpu_s, 3) if run.server_cpu_s else 0.0,
                "server_cpu_ms_per_request": round(1000 * run.server_cpu_s / max(run.requests, 1), 3),
                "machine_busy_percent": run.machine_busy_percent,
            }
            if name in ("purchase", "hot_card"):
                row["purchases_written"] = written  # warm-up included; answered 201s are at most this
            scenarios.append(row)
            if name == "scan" and connections == min(options.connections) and not comparison:
                comparison = compare_generators(options, world, server, pool, row, connections)
    finally:
        server.stop()
    return scenarios, comparison


def settle(server_pid: int, limit: float = 30.0) -> None:
    """Wait until gunicorn has finished what the last wrk left queued (sync workers still answer
    requests whose client has gone): under 5% of a core for half a second, or `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = loadgen.process_tree_cpu(server_pid)
        time.sleep(0.5)
        if loadgen.process_tree_cpu(server_pid) - before < 0.025:
            return


def compare_generators(options, world, server, pool, wrk_row, connections) -> dict:
    """The same scan load from a Python generator: its CPU per request against wrk's."""
    tokens = seed.mint_tokens(world, pool[:200])
    requests = [("POST", "/api/pos/v1/scan/", {"json": {"code": token},
                                               "headers": {"Authorization": f"Device {d.key}"}})
                for n, token in enumerate(tokens) for d in [world.devices[n % len(world.devices)]]]
    print("scan from a Python generator (httpx), for the load generator's cost ...", flush=True)
    python = loadgen.python_client_cost(server.base_url, requests, connections, min(options.seconds, 5.0),
                                        server.process.pid)
    python["connections"] = connections
    python["wrk_cpu_ms_per_request"] = round(1000 * wrk_row["wrk_cpu_s"] / max(wrk_row["requests"], 1), 3)
    python["wrk_server_cpu_ms_per_request"] = wrk_row["server_cpu_ms_per_request"]
    return python


# ---------------------------------------------------------------------------------------------
# The other benchmarks, each in its own process


def run_json(command: list[str], env: dict | None = None, timeout: float = 900) -> dict:
    finished = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout)
    if finished.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def sibling_url(options, suffix: str) -> str:
    return f"{options.database_url.rsplit('/', 1)[0]}/{options.database_url.rsplit('/', 1)[1]}_{suffix}"


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def run_others(options, results: dict) -> None:
    """Each benchmark's failure is recorded in the results instead of ending the run."""
    for name, function in (("passes", run_passes), ("images", run_images), ("crm", run_crm),
                           ("reconciliation", run_reconciliation)):
        if name in options.skip:
            continue
        try:
            results[name] = function(options)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
            print(f"{name} failed: {error}", flush=True)
            results[name] = {"failed": str(error)[-2000:]}


def run_passes(options) -> dict:
    print("pass_bench ...", flush=True)
    seconds = "0.5" if options.quick else "2"
    return run_json(["bench/pass_bench.py", "--seconds", seconds, "--json"], {"DATABASE_URL": ""})["per_second"]


def run_images(options) -> dict:
    """Signed pass-image URLs (/i/...) over HTTP: gunicorn and wrk on this machine, images cached per process."""
    print("image_bench (signed image URLs through gunicorn) ...", flush=True)
    seconds = "3" if options.quick else str(int(options.seconds))
    return run_json(["bench/image_bench.py", "--seconds", seconds, "--json"], {"DATABASE_URL": ""})


def run_crm(options) -> dict:
    print("crm_bench (throughput) ...", flush=True)
    events = "1000" if options.quick else "3000"
    return run_json(["bench/crm_bench.py", "--part", "throughput", "--batch-sizes", "100", "--events", events,
                     "--database-url", sibling_url(options, "crm"), "--json"])


def run_reconciliation(options) -> dict:
    print("reconciliation_bench (seeds 10^6 entries the first time, then reuses them) ...", flush=True)
    url = sibling_url(options, "recon_quick" if options.quick else "recon")
    ensure_database(url)
    size = ["--entries", "100000", "--cards", "5000", "--noise-entries", "20000", "--runs", "1"] if options.quick \
        else ["--runs", "3"]
    return run_json(["bench/reconciliation_bench.py", "--reuse", "--database-url", url, *size, "--json"],
                    timeout=1800)


def check_ledger() -> str:
    from django.core.management import CommandError, call_command
    from django.db import connection

    try:
        call_command("check_ledger", stdout=io.StringIO(), stderr=io.StringIO())
        return "ok"
    except CommandError as error:
        return f"FAILED: {error}"
    finally:
        connection.close()


def main():
    options = parse_options()
    check_tools(options)
    started = time.monotonic()
    idle = cpu_idle_percent()
    load_before = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    prepare(options)
    print(f"seeding {options.cards} cards ...", flush=True)
    world = seed.seed(options.cards, max(options.connections))
    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "mode": "quick" if options.quick else "full",
        "machine": report.machine(), "git": report.git_commit(), "cpu_idle_percent_before": idle,
        "load_before": load_before,
        "config": {"seconds": options.seconds, "warmup": options.warmup, "cards": options.cards,
                   "connections": options.connections, "database": options.database_url.rsplit("@", 1)[-1]},
        "server": {"wsgi": "config.wsgi", "workers": options.workers, "worker_class": "sync",
                   "cache": "redis", "debug": False},
        "load_generator": {"name": "wrk (Debian package) with bench/loadgen/tessera.lua, 2 threads"},
    }
    results["floors"] = run_floors(options, world)
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as workdir:
        results["scenarios"], comparison = run_http(options, world, Path(workdir), results["floors"])
        if "hardening" not in options.skip and not options.only:
            results["hardening"] = hardening.run(options, world, Path(workdir), Server, loadgen, data_file)
        if options.db_restart:
            results["db_restart"] = db_restart.run(options, world, Path(workdir), Server, seed.AMOUNT, check_ledger)
    if comparison:
        results["load_generator"]["python_comparison"] = comparison
    results["check_ledger"] = check_ledger()
    run_others(options, results)
    results["load_after"] = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["targets"] = report.targets(results)
    Path(options.output).write_text(json.dumps(results, indent=2) + "\n")
    report.print_table(results)
    print(f"\n{results['elapsed_s']:.0f} s in all; results in {options.output}")
    sys.exit(0 if results["check_ledger"] == "ok" and results.get("db_restart", {}).get("passed", True) else 1)


if __name__ == "__main__":
    main()
