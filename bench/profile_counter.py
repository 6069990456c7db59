"""Where a counter request spends its time: scan and purchase in one process, without gunicorn.

Each request goes through Django's WSGI handler (config.wsgi, the same middleware, DRF and views as
under gunicorn) in this process, one at a time, against PostgreSQL. The script counts the SQL
statements of one scan and one purchase (and prints them), times N of each (wall and CPU per request),
and profiles them with pyinstrument, writing the text profiles to bench/profiles/:

    .venv/bin/python bench/profile_counter.py                       # 300 pairs, profiles written
    .venv/bin/python bench/profile_counter.py --iterations 1000 --no-profile --show-sql

It DROPS and recreates the database named by --database-url (the name must contain "bench"), migrates
it and seeds it as bench/counter_http_bench.py does (one merchant, store, program with two tiers and
three rewards, one device, 8 cards). DEBUG is off, as in the HTTP benchmark. A statement here is one
execute() through Django's cursor; the connection's health check ("SELECT 1" at the start of a request
when CONN_HEALTH_CHECKS is on) bypasses that cursor and is counted separately.
"""
import argparse
import io
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
from scratch_database import recreate_database  # noqa: E402  (bench/, the script's own folder)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tessera_bench_profile"
SCAN_PATH = "/api/pos/v1/scan/"
PURCHASE_PATH = "/api/pos/v1/purchases/"
AMOUNT = 1234


def environ(path: str, body: dict, key: str, idempotency_key: str | None = None) -> dict:
    raw = json.dumps(body).encode()
    env = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Device {key}",
        "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    if idempotency_key:
        env["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    return env


class Caller:
    """Calls the WSGI application like gunicorn does, and checks the status."""

    def __init__(self, application, key: str, currency: str):
        self.application, self.key, self.currency = application, key, currency

    def _call(self, env, expected: int) -> bytes:
        status = {}

        def start_response(line, headers, exc_info=None):
            status["line"] = line

        chunks = self.application(env, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()  # fires request_finished: Django closes or keeps the connection here
        if not status["line"].startswith(str(expected)):
            raise SystemExit(f"{env['PATH_INFO']}: {status['line']} {body[:300]!r}")
        return body

    def scan(self, number: str) -> bytes:
        return self._call(environ(SCAN_PATH, {"code": number}, self.key), 200)

    def purchase(self, number: str) -> bytes:
        sale = f"profile-{uuid.uuid4().hex}"
        body = {"code": number, "external_id": sale, "amount": AMOUNT, "currency": self.currency}
        return self._call(environ(PURCHASE_PATH, body, self.key, idempotency_key=sale), 201)


def count_statements(caller: Caller, number: str, show_sql: bool) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for name, call in (("scan", caller.scan), ("purchase", caller.purchase)):
        call(number)  # warm: the connection is open and every memo filled, as in steady state
        with CaptureQueriesContext(connection) as captured:
            call(number)
        counts[name] = len(captured.captured_queries)
        if show_sql:
            print(f"--- {name}: {counts[name]} statements")
            for query in captured.captured_queries:
                print(f"  {query['sql'][:400]}")
    return counts


def time_requests(caller: Caller, numbers: list[str], iterations: int) -> dict:
    timings = {}
    for name, call in (("scan", caller.scan), ("purchase", caller.purchase)):
        walls = []
        cpu_start = time.process_time()
        for n in range(iterations):
            started = time.perf_counter()
            call(numbers[n % len(numbers)])
            walls.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu_start
        walls.sort()
        timings[name] = {
            "wall_ms_median": round(walls[len(walls) // 2] * 1000, 2),
            "wall_ms_p99": round(walls[max(0, int(len(walls) * 0.99) - 1)] * 1000, 2),
            "cpu_ms_mean": round(cpu / iterations * 1000, 2),
        }
    return timings


def profile(caller: Caller, numbers: list[str], iterations: int, out: Path, tag: str, show_all: bool) -> list[Path]:
    from pyinstrument import Profiler

    written = []
    for name, call in (("scan", caller.scan), ("purchase", caller.purchase)):
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for n in range(iterations):
            call(numbers[n % len(numbers)])
        profiler.stop()
        path = out / f"{tag}-{name}.txt"
        header = f"# {name}: {iterations} requests through config.wsgi in one process (pyinstrument, 0.5 ms)\n"
        path.write_text(header + profiler.output_text(unicode=False, color=False, show_all=show_all))
        written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="dropped and recreated")
    parser.add_argument("--iterations", type=int, default=300, help="requests of each kind timed and profiled")
    parser.add_argument("--tag", default="counter", help="profile file names: bench/profiles/<tag>-scan.txt")
    parser.add_argument("--no-profile", action="store_true", help="count and time only")
    parser.add_argument("--show-all", action="store_true", help="profiles show library frames too")
    parser.add_argument("--show-sql", action="store_true", help="print each statement of one scan and purchase")
    options = parser.parse_args()

    recreate_database(options.database_url)
    os.environ["DATABASE_URL"] = options.database_url
    os.environ.pop("TESSERA_ENV", None)
    os.environ["DJANGO_DEBUG"] = "false"

    import django

    django.setup()
    from counter_http_bench import seed
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seeded = seed(argparse.Namespace(threads=1, cards=8))

    from config.wsgi import application

    caller = Caller(application, seeded.device_keys[0], seeded.currency)
    numbers = seeded.card_numbers
    counts = count_statements(caller, numbers[0], options.show_sql)
    timings = time_requests(caller, numbers, options.iterations)
    print(f"SQL statements per request: scan {counts['scan']}, purchase {counts['purchase']}")
    for name, timing in timings.items():
        print(f"{name:>8}: median {timing['wall_ms_median']} ms, p99 {timing['wall_ms_p99']} ms, "
              f"CPU {timing['cpu_ms_mean']} ms per request ({options.iterations} requests, one process)")
    if not options.no_profile:
        out = BENCH / "profiles"
        out.mkdir(exist_ok=True)
        for path in profile(caller, numbers, options.iterations, out, options.tag, options.show_all):
            print(f"profile: {path.relative_to(ROOT)}")
    call_command("check_ledger", stdout=io.StringIO())
    print("check_ledger: ok")


if __name__ == "__main__":
    main()
