"""The counter over real HTTP: scan then purchase through gunicorn and PostgreSQL, against raw SQL.

Each iteration is what a till does for a sale: `POST /api/pos/v1/scan/` with the card number, then
`POST /api/pos/v1/purchases/` with a fresh Idempotency-Key and external id. Client threads (one
keep-alive httpx client and one registered device each, like separate tills) drive a gunicorn
server started here; then the same work is done in raw SQL through psycopg with the same number of
threads (card read + redeemable rewards; one transaction with the idempotency claim, card lock,
purchase, balance update, ledger entry and outbox events) as the floor. It prints pairs/s,
requests/s, p50 and p99 per request and per pair, the errors, and the ratio HTTP / raw.

    .venv/bin/python bench/counter_http_bench.py --threads 4 --seconds 20

It DROPS and recreates the database named by --database-url (default tessera_bench_http on the
local PostgreSQL; the name must contain "bench"), migrates it, seeds one merchant, store, program,
one device per client thread and --cards customers with cards, and runs `check_ledger` at the end.
Options: --workers (default 2, one per core), --worker-class sync|gthread (default sync: the work is
CPU-bound; sync closes each connection, gthread keeps it alive), --worker-threads, --hot-card (every
thread on one card), --iterations (a count instead of --seconds), --json. gunicorn runs with
development settings (TESSERA_ENV unset) but DJANGO_DEBUG=false unless --debug, so Django keeps no
per-query log.

Every request carries the device key, checked against its argon2 hash; the benchmark also times one
`key_matches` on a fresh hash (cold: the argon2 verify) and again on the same hash (warm: whatever
the code remembers), so the output says what authentication costs per request.
"""
import argparse
import hashlib
import io
import json
import logging
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scratch_database import recreate_database  # noqa: E402  (bench/, the script's own folder)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tessera_bench_http"
SCAN_PATH = "/api/pos/v1/scan/"
PURCHASE_PATH = "/api/pos/v1/purchases/"
HEALTH_PATH = "/api/health/"
AMOUNT = 1234  # minor units: 12 points at 1 point per euro (24 once a card reaches Gold)
MAX_ERRORS_PER_THREAD = 50  # a broken server should end the run, not spin on failures


# ---------------------------------------------------------------------------------------------
# Database and seed


@dataclass
class Seed:
    merchant_id: int
    store_id: int
    program_id: int
    currency: str
    device_keys: list[str]
    device_ids: list[int]
    card_numbers: list[str]
    customer_ids: dict[str, int]  # by card number


def seed(options) -> Seed:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from merchants.models import Reward, Tier
    from pos_integration.services import register_device
    from tests.factories import make_merchant, make_program, make_store
    from wallet.services import create_customer, enroll

    merchant = make_merchant(name="Bench counter")
    store = make_store(merchant)
    program = make_program(merchant)
    Tier.objects.create(program=program, name="Silver", threshold=0, multiplier=Decimal("1"))
    Tier.objects.create(program=program, name="Gold", threshold=500, multiplier=Decimal("2"))
    for name, cost in (("Coffee", 100), ("Cake", 250), ("Lunch", 1000)):
        Reward.objects.create(program=program, name=name, points_cost=cost)
    devices = [register_device(store, f"Till {n + 1}") for n in range(options.threads)]
    numbers, customers = [], {}
    for n in range(max(options.cards, 1)):
        # No password: an unusable one costs nothing, a real one is an argon2 hash per customer.
        user = get_user_model().objects.create_user(
            username=f"bench{n}-{uuid.uuid4().hex[:6]}", email=f"bench{n}@example.com", first_name=f"Ada{n}"
        )
        customer = create_customer(user)
        card = enroll(customer, program).card
        numbers.append(card.number)
        customers[card.number] = customer.pk
    connection.close()
    return Seed(
        merchant.pk, store.pk, program.pk, merchant.currency, [issued.key for issued in devices],
        [issued.device.pk for issued in devices], numbers, customers,
    )


def key_check_cost(rounds: int = 5) -> dict:
    """`key_matches`, the device check of every request: cold (a hash it has not seen, so the argon2
    verify) and warm (the same key and hash again), wall and CPU ms, median of rounds."""
    from pos_integration.keys import hash_key, key_matches, new_device_key

    _, key = new_device_key()
    cold, cold_cpu, warm = [], [], []
    hashed = ""
    for _ in range(rounds):
        hashed = hash_key(key)  # a new salt each round: nothing remembered about this hash
        wall, cpu = time.perf_counter(), _cpu_seconds()
        assert key_matches(key, hashed)
        cold.append(time.perf_counter() - wall)
        cold_cpu.append(_cpu_seconds() - cpu)
        wall = time.perf_counter()
        assert key_matches(key, hashed)
        warm.append(time.perf_counter() - wall)
    return {
        "cold_ms": _median(cold) * 1000, "cold_cpu_ms": _median(cold_cpu) * 1000, "warm_ms": _median(warm) * 1000,
        "hash_parameters": hashed.split("$")[3],
    }


def cpu_idle_percent(seconds: float = 1.0) -> float | None:
    """How idle the whole machine is right now (Linux /proc/stat), to flag runs that share it."""

    def sample():
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle1, total1 = sample()
        time.sleep(seconds)
        idle2, total2 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100 * (idle2 - idle1) / max(total2 - total1, 1), 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads: argon2 runs its lanes in threads
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------
# The load driver, shared by HTTP and raw SQL


@dataclass
class Sample:
    scan: float
    purchase: float
    pair: float


@dataclass
class Run:
    label: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    successes_total: int = 0  # purchases written, warm-up included (checked against the database)


class PairFailed(Exception):
    pass


def drive(label: str, options, seed_data: Seed, open_state, do_scan, do_purchase, close_state) -> Run:
    """Run `threads` workers: warm up, then measure for --seconds (or --iterations pairs in all)."""
    run = Run(label)
    lock = threading.Lock()
    threads = options.threads
    per_thread = math.ceil(options.iterations / threads) if options.iterations else None
    timing = {}
    ready = threading.Barrier(threads + 1)

    def worker(index: int):
        try:
            state = open_state(index)
        except BaseException:
            ready.abort()  # the main thread's wait raises instead of hanging
            raise
        # A disjoint slice of the cards per thread: concurrent purchases never wait on one card's lock.
        mine = seed_data.card_numbers[:1] if options.hot_card else seed_data.card_numbers[index::threads]
        samples, errors, written, n, measured = [], [], 0, 0, 0
        try:
            ready.wait()
            while len(errors) < MAX_ERRORS_PER_THREAD:
                if per_thread is None and time.perf_counter() >= timing["end"]:
                    break
                if per_thread is not None and measured >= per_thread:
                    break
                number = mine[n % len(mine)]
                n += 1
                sale = f"bench-{uuid.uuid4().hex}"
                started = time.perf_counter()
                try:
                    do_scan(state, number)
                    scanned = time.perf_counter()
                    do_purchase(state, number, sale)
                    written += 1
                except PairFailed as error:
                    errors.append(str(error))
                    continue
                except Exception as error:  # noqa: BLE001 - a benchmark counts and reports every failure
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                done = time.perf_counter()
                if started >= timing["warm_end"] and (per_thread is not None or done <= timing["end"]):
                    samples.append(Sample(scanned - started, done - scanned, done - started))
                    measured += 1
                    with lock:
                        timing["last"] = max(timing.get("last", 0.0), done)
        finally:
            close_state(state)
            with lock:
                run.samples.extend(samples)
                run.errors.extend(errors)
                run.successes_total += written

    workers = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(threads)]
    for thread in workers:
        thread.start()
    now = time.perf_counter()
    timing["warm_end"] = now + options.warmup
    timing["end"] = timing["warm_end"] + options.seconds
    ready.wait()
    for thread in workers:
        thread.join()
    run.elapsed = (timing.get("last", timing["warm_end"]) - timing["warm_end"]) if per_thread else options.seconds
    return run


# ---------------------------------------------------------------------------------------------
# HTTP through gunicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn serving config.wsgi on 127.0.0.1, started and stopped by this benchmark."""

    def __init__(self, options, database_url: str, workdir: Path):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "gunicorn.log"
        env = dict(os.environ, DATABASE_URL=database_url, DJANGO_DEBUG="true" if options.debug else "false")
        env.pop("TESSERA_ENV", None)  # development settings (no production secrets needed)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(options.workers),
            "--worker-class", options.worker_class, "--timeout", "120", "--graceful-timeout", "5",
            "--error-logfile", str(self.log), "--log-level", "warning",
        ]
        if options.worker_class == "gthread":
            command += ["--threads", str(options.worker_threads)]
        if getattr(options, "access_log", None):  # the hardening run: every request's path, status and time
            command += ["--access-logfile", options.access_log, "--access-logformat", options.access_log_format]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"gunicorn exited with {self.process.returncode}")
            try:
                if httpx.get(self.base_url + HEALTH_PATH, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.fail("gunicorn did not answer /api/health/ in time")

    def fail(self, message: str) -> None:
        self.stop()
        tail = self.log.read_text()[-3000:] if self.log.exists() else ""
        sys.exit(f"{message}; log {self.log}:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the master we started: graceful shutdown of its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_http(options, seed_data: Seed, server: Server) -> Run:
    import httpx

    def open_state(index: int):
        key = seed_data.device_keys[index % len(seed_data.device_keys)]
        return httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Device {key}"},
            timeout=120,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def check(response, expected: int, what: str):
        if response.status_code != expected:
            raise PairFailed(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    def do_scan(client, number):
        body = check(client.post(SCAN_PATH, json={"code": number}), 200, "scan")
        if body["card"]["number"] != number:
            raise PairFailed(f"scan: answered card {body['card']['number']} for {number}")

    def do_purchase(client, number, sale):
        response = client.post(
            PURCHASE_PATH,
            json={"code": number, "external_id": sale, "amount": AMOUNT, "currency": seed_data.currency},
            headers={"Idempotency-Key": sale},
        )
        body = check(response, 201, "purchase")
        if body["points_earned"] <= 0 or response.headers.get("Idempotent-Replayed"):
            raise PairFailed(f"purchase: unexpected answer {body}")

    label = f"HTTP (gunicorn {options.workers} {options.worker_class})"
    return drive(label, options, seed_data, open_state, do_scan, do_purchase, lambda client: client.close())


# ---------------------------------------------------------------------------------------------
# The floor: the same reads and the same transaction in raw SQL (psycopg, no ORM)


def raw_sql_statements() -> dict[str, str]:
    """Table names from the models' metadata, columns as migrated."""
    from django.contrib.auth import get_user_model

    from merchants.models import Merchant, Program, Reward, Tier
    from pos_integration.models import CounterAction
    from wallet.models import Card, Customer, DomainEvent, IdempotencyRecord, LedgerEntry, Purchase, Wallet

    t = {
        "card": Card._meta.db_table, "wallet": Wallet._meta.db_table, "customer": Customer._meta.db_table,
        "user": get_user_model()._meta.db_table, "tier": Tier._meta.db_table, "reward": Reward._meta.db_table,
        "program": Program._meta.db_table, "merchant": Merchant._meta.db_table,
        "purchase": Purchase._meta.db_table, "entry": LedgerEntry._meta.db_table,
        "event": DomainEvent._meta.db_table, "idem": IdempotencyRecord._meta.db_table,
        "action": CounterAction._meta.db_table,
    }
    return {
        # Scan: the card summary a cashier sees, then the rewards it can pay for now.
        "scan_card": f"""
            SELECT c.id, c.number, u.first_name, c.status, t.name, c.balance, c.program_id
            FROM {t['card']} c
            JOIN {t['wallet']} w ON w.id = c.wallet_id
            JOIN {t['customer']} cu ON cu.id = w.customer_id
            JOIN {t['user']} u ON u.id = cu.user_id
            LEFT JOIN {t['tier']} t ON t.id = c.tier_id
            WHERE c.number = %s AND c.merchant_id = %s""",
        "scan_rewards": f"""
            SELECT id, name, points_cost FROM {t['reward']}
            WHERE program_id = %s AND is_active AND points_cost <= GREATEST(%s, 0)
              AND (stock IS NULL OR stock <> 0)
            ORDER BY points_cost""",
        # Purchase: find the card by number for this merchant, then one transaction.
        "find_card": f"SELECT id FROM {t['card']} WHERE number = %s AND merchant_id = %s",
        "claim_key": f"""
            INSERT INTO {t['idem']} (merchant_id, key, operation, fingerprint, result, created_at)
            VALUES (%s, %s, 'record_purchase', %s, '{{}}', now()) RETURNING id""",
        "lock_card": f"""
            SELECT c.status, c.lifetime_points, c.tier_id, t.multiplier, p.points_per_currency_unit,
                   p.rounding, m.currency, w.customer_id, c.program_id
            FROM {t['card']} c
            JOIN {t['program']} p ON p.id = c.program_id
            JOIN {t['merchant']} m ON m.id = c.merchant_id
            JOIN {t['wallet']} w ON w.id = c.wallet_id
            LEFT JOIN {t['tier']} t ON t.id = c.tier_id
            WHERE c.id = %s FOR UPDATE OF c""",
        "insert_purchase": f"""
            INSERT INTO {t['purchase']} (merchant_id, store_id, card_id, external_id, amount, currency, items,
                status, refunded_amount, points_earned, points_reversed, occurred_at, created_at, receipt_code)
            VALUES (%s, %s, %s, %s, %s, %s, '[]', 'completed', 0, %s, 0, %s, now(), '') RETURNING id""",
        "update_card": f"""
            UPDATE {t['card']} SET balance = balance + %(points)s, lifetime_points = lifetime_points + %(points)s,
                tier_id = (SELECT id FROM {t['tier']} WHERE program_id = %(program)s
                           AND threshold <= {t['card']}.lifetime_points + %(points)s
                           ORDER BY threshold DESC LIMIT 1),
                pass_updated_at = now()
            WHERE id = %(card)s RETURNING balance, lifetime_points, tier_id""",
        "insert_entry": f"""
            INSERT INTO {t['entry']} (merchant_id, card_id, kind, delta, balance_after, purchase_id, multiplier,
                reason, source, occurred_at, created_at)
            VALUES (%s, %s, 'earn', %s, %s, %s, %s, '', 'pos', %s, now()) RETURNING id""",
        "insert_event": f"""
            INSERT INTO {t['event']} (merchant_id, customer_id, card_id, event_type, schema_version, payload,
                occurred_at)
            VALUES (%s, %s, %s, %s, 1, %s, %s)""",
        "store_result": f"UPDATE {t['idem']} SET result = %s WHERE id = %s",
        # The till's record of the write (device, no cashier), in the same transaction.
        "insert_action": f"""
            INSERT INTO {t['action']} (merchant_id, device_id, kind, card_id, purchase_id, ledger_entry_id,
                created_at)
            VALUES (%s, %s, 'purchase', %s, %s, %s, now())""",
    }


def run_raw(options, seed_data: Seed, database_url: str) -> Run:
    import datetime as dt

    import psycopg
    from psycopg.types.json import Jsonb

    from wallet import rules

    sql = raw_sql_statements()
    merchant_id, store_id, currency = seed_data.merchant_id, seed_data.store_id, seed_data.currency

    def open_state(index: int):
        conn = psycopg.connect(database_url, autocommit=True)  # reads in autocommit, like Django's
        conn.device_id = seed_data.device_ids[index % len(seed_data.device_ids)]
        return conn

    def do_scan(conn, number):
        card = conn.execute(sql["scan_card"], (number, merchant_id)).fetchone()
        if card is None:
            raise PairFailed(f"scan: no card {number}")
        conn.execute(sql["scan_rewards"], (card[6], card[5])).fetchall()

    def do_purchase(conn, number, sale):
        card_id = conn.execute(sql["find_card"], (number, merchant_id)).fetchone()[0]
        now = dt.datetime.now(dt.UTC)
        request = {"card_id": card_id, "external_id": sale, "amount": AMOUNT, "currency": currency,
                   "store_id": store_id, "items": [], "occurred_at": None}
        fingerprint = hashlib.sha256(
            json.dumps({"operation": "record_purchase", "request": request}, sort_keys=True).encode()
        ).hexdigest()
        with conn.transaction():
            claim = conn.execute(
                sql["claim_key"], (merchant_id, f"device-{conn.device_id}:{sale}", fingerprint)
            ).fetchone()[0]
            status, _lifetime, old_tier, multiplier, rate, rounding, card_currency, customer_id, program_id = (
                conn.execute(sql["lock_card"], (card_id,)).fetchone()
            )
            if status != "active" or card_currency != currency:
                raise PairFailed("purchase: card closed or currency mismatch")
            points = rules.points_for_amount(AMOUNT, currency, rate, multiplier or Decimal(1), rounding)
            purchase_id = conn.execute(
                sql["insert_purchase"], (merchant_id, store_id, card_id, sale, AMOUNT, currency, points, now)
            ).fetchone()[0]
            balance, lifetime, tier_id = conn.execute(
                sql["update_card"], {"points": points, "program": program_id, "card": card_id}
            ).fetchone()
            entry_id = conn.execute(
                sql["insert_entry"], (merchant_id, card_id, points, balance, purchase_id, multiplier, now)
            ).fetchone()[0]
            events = [
                ("wallet.purchase.recorded", {"card_number": number, "purchase_id": purchase_id, "external_id": sale,
                                              "store_id": store_id, "amount": AMOUNT, "currency": currency,
                                              "points_earned": points}),
                ("wallet.points.changed", {"card_number": number, "program_id": program_id, "entry_id": entry_id,
                                           "kind": "earn", "delta": points, "balance": balance,
                                           "lifetime_points": lifetime, "reason": ""}),
            ]
            if tier_id != old_tier:
                events.append(("wallet.tier.changed", {"card_number": number, "previous_tier_id": old_tier,
                                                       "tier_id": tier_id, "lifetime_points": lifetime}))
            with conn.cursor() as cursor:
                cursor.executemany(
                    sql["insert_event"],
                    [(merchant_id, customer_id, card_id, kind, Jsonb(payload), now) for kind, payload in events],
                )
            result = {"purchase_id": purchase_id, "card_id": card_id, "entry_id": entry_id, "points_earned": points,
                      "balance": balance, "lifetime_points": lifetime, "tier_id": tier_id}
            conn.execute(sql["store_result"], (Jsonb(result), claim))
            conn.execute(sql["insert_action"], (merchant_id, conn.device_id, card_id, purchase_id, entry_id))

    return drive("raw SQL (psycopg)", options, seed_data, open_state, do_scan, do_purchase, lambda conn: conn.close())


# ---------------------------------------------------------------------------------------------
# Results


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _percentile(values, fraction: float) -> float | None:
    """Nearest rank: the smallest value with at least `fraction` of the samples at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(run: Run) -> dict:
    count = len(run.samples)

    def latency(name):
        values = [getattr(sample, name) * 1000 for sample in run.samples]
        p50, p99 = _percentile(values, 0.50), _percentile(values, 0.99)
        return {"p50_ms": None if p50 is None else round(p50, 2), "p99_ms": None if p99 is None else round(p99, 2)}

    pairs_per_s = count / run.elapsed if run.elapsed > 0 else 0.0
    return {
        "label": run.label,
        "pairs": count,
        "seconds": round(run.elapsed, 2),
        "pairs_per_s": round(pairs_per_s, 2),
        "requests_per_s": round(2 * pairs_per_s, 2),
        "latency": {name: latency(name) for name in ("pair", "scan", "purchase")},
        "errors": len(run.errors),
        "error_samples": sorted(set(run.errors))[:5],
        "purchases_written": run.successes_total,
    }


def print_table(results: dict) -> None:
    config, key_check = results["config"], results["device_key_check"]
    cards = "one hot card" if config["hot_card"] else f"{config['cards']} cards, a disjoint set per thread"
    length = f"{config['iterations']} pairs" if config["iterations"] else f"{config['seconds']:g} s"
    warmup = f"{config['warmup']:g} s warm-up"
    print(f"scan + purchase, {config['threads']} client threads, {cards}; {length} after {warmup}")
    server = f"{config['workers']} {config['worker_class']} workers"
    if config["worker_class"] == "gthread":
        server += f" x {config['worker_threads']} threads"
    print(f"gunicorn: {server}, DEBUG {'on' if config['debug'] else 'off'}; PostgreSQL at {config['database']}")
    print(
        f"device-key check per request (key_matches, argon2 {key_check['hash_parameters']}): cold "
        f"{key_check['cold_ms']:.1f} ms ({key_check['cold_cpu_ms']:.1f} ms CPU), warm {key_check['warm_ms']:.3f} ms; "
        f"{config['cpus']} CPUs shared by clients, gunicorn and PostgreSQL"
    )
    idle = config["cpu_idle_percent_before"]
    if idle is not None and idle < 90:
        print(f"warning: the CPUs were only {idle:.0f}% idle before the run: something else is running")
    header = (f"{'path':<34} {'pairs':>6} {'pairs/s':>8} {'req/s':>7} {'pair p50':>9} {'pair p99':>9} "
              f"{'scan p50':>9} {'scan p99':>9} {'buy p50':>8} {'buy p99':>8} {'errors':>6}")
    print(header)

    def ms(value):
        return "-" if value is None else f"{value:.1f}"

    for row in results["runs"]:
        lat = row["latency"]
        print(
            f"{row['label']:<34} {row['pairs']:>6} {row['pairs_per_s']:>8.1f} {row['requests_per_s']:>7.1f} "
            f"{ms(lat['pair']['p50_ms']):>9} {ms(lat['pair']['p99_ms']):>9} {ms(lat['scan']['p50_ms']):>9} "
            f"{ms(lat['scan']['p99_ms']):>9} {ms(lat['purchase']['p50_ms']):>8} {ms(lat['purchase']['p99_ms']):>8} "
            f"{row['errors']:>6}"
        )
    print("latencies in ms; req/s counts both requests of a pair (raw SQL: the same work, no HTTP)")
    for ratio in results["ratios"]:
        print(
            f"ratio {ratio['http']} / raw SQL: throughput {ratio['throughput_x']}x lower, "
            f"pair p50 {ratio['p50_x']}x, pair p99 {ratio['p99_x']}x"
        )
    for row in results["runs"]:
        for sample in row["error_samples"]:
            print(f"error ({row['label']}): {sample}")
    print(f"check_ledger: {results['check_ledger']}; purchases in the database: {results['purchases_in_database']} "
          f"(expected {results['purchases_expected']})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="dropped and recreated")
    parser.add_argument("--threads", type=int, default=4, help="client threads (and raw SQL threads)")
    parser.add_argument("--cards", type=int, default=None, help="customers with cards (default 8 per thread)")
    parser.add_argument("--hot-card", action="store_true", help="every thread scans and buys on one card")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per run")
    parser.add_argument("--iterations", type=int, default=None, help="measure this many pairs instead")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2 for a 2-core machine)")
    # sync by default: the work is CPU-bound Python on 2 cores, so threads in a worker only share one GIL.
    # Measured with 4 and 8 clients: gthread x4 gave the same pairs/s within noise and a worse p99 at 8; with
    # the former 64 MiB argon2 check on every request it was a third slower (8 hashes at once, not 2).
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync",
                        help="sync (default): CPU-bound work, one request per process at a time")
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--debug", action="store_true", help="run gunicorn with DJANGO_DEBUG=true (query log)")
    parser.add_argument("--skip-raw", action="store_true", help="HTTP only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    options = parser.parse_args()
    if options.cards is None:
        options.cards = 8 * options.threads
    if not options.hot_card and options.cards < options.threads:
        parser.error("--cards must be at least --threads (or use --hot-card)")

    idle_at_start = cpu_idle_percent()
    recreate_database(options.database_url)
    os.environ["DATABASE_URL"] = options.database_url
    os.environ.pop("TESSERA_ENV", None)

    import django

    django.setup()
    for noisy in ("httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from django.core.management import CommandError, call_command
    from django.db import connection

    from wallet.models import Purchase

    call_command("migrate", verbosity=0)
    seed_data = seed(options)
    key_check = key_check_cost()

    runs = []
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as workdir:
        server = Server(options, options.database_url, Path(workdir))
        try:
            server.wait_healthy()
            runs.append(run_http(options, seed_data, server))
        finally:
            server.stop()
    if not options.skip_raw:
        runs.append(run_raw(options, seed_data, options.database_url))

    summaries = [summarise(run) for run in runs]
    ratios = []
    raw = next((s for s in summaries if s["label"].startswith("raw")), None)
    for http in summaries:
        if raw is None or http is raw or not raw["pairs_per_s"] or not http["pairs_per_s"]:
            continue
        ratios.append({
            "http": http["label"],
            "throughput_x": round(raw["pairs_per_s"] / http["pairs_per_s"], 1),
            "p50_x": round(http["latency"]["pair"]["p50_ms"] / raw["latency"]["pair"]["p50_ms"], 1),
            "p99_x": round(http["latency"]["pair"]["p99_ms"] / raw["latency"]["pair"]["p99_ms"], 1),
        })

    try:
        call_command("check_ledger", stdout=io.StringIO())
        ledger = "ok"
    except CommandError as error:  # reported, and the exit status says so
        ledger = f"FAILED: {error}"
    expected = sum(run.successes_total for run in runs)
    in_database = Purchase.objects.filter(merchant_id=seed_data.merchant_id).count()
    connection.close()

    results = {
        "config": {
            "threads": options.threads, "cards": 1 if options.hot_card else options.cards,
            "hot_card": options.hot_card, "seconds": None if options.iterations else options.seconds,
            "iterations": options.iterations,
            "warmup": options.warmup, "workers": options.workers, "worker_class": options.worker_class,
            "worker_threads": options.worker_threads, "debug": options.debug,
            "database": urlsplit(options.database_url).netloc.split("@")[-1] + urlsplit(options.database_url).path,
            "cpus": os.cpu_count(),
            "cpu_idle_percent_before": idle_at_start,
        },
        "device_key_check": {k: round(v, 3) if isinstance(v, float) else v for k, v in key_check.items()},
        "runs": summaries,
        "ratios": ratios,
        "check_ledger": ledger,
        "purchases_in_database": in_database,
        "purchases_expected": expected,
    }
    if options.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    failed = ledger != "ok" or in_database != expected or any(s["errors"] for s in summaries)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
