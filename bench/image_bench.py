"""Signed pass-QR URLs over HTTP: gunicorn serving config.wsgi, wrk fetching /i/<sealed>.png.

    .venv/bin/python bench/image_bench.py [--seconds 10] [--connections 32] [--cards 50] [--json]

Mints one pass token per card (a scratch in-memory SQLite database: nothing is written to the
development database) and seals its image URLs, as GET /api/v1/cards/{id}/pass-token/ does; starts
`gunicorn -w 2 config.wsgi` on a free local port (DJANGO_DEBUG=false; same SECRET_KEY as this
process, from the environment or var/dev-secrets.json); checks every URL answers the exact PNG; then
runs `wrk -t2 -c32` for --seconds with bench/loadgen/tessera.lua's "paths" scenario, rotating
through the URLs (each thread from its own offset), and prints requests/s, p50/p90/p99 latency,
errors, and the CPU seconds of wrk and of gunicorn (master and workers). The cards' images are
rendered once per worker and then come from the per-process cache (wallet.passes.images.cached):
this measures the cached path.
--base-url measures a server that is already running instead (it must share this SECRET_KEY).
"""
import argparse
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("DATABASE_URL", None)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

django.setup()
settings.DATABASES["default"]["NAME"] = ":memory:"  # before the first connection: a scratch database
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # customers' throwaway passwords

from django.core.management import call_command  # noqa: E402
from harness import loadgen  # noqa: E402

from tests.factories import build_world, make_card  # noqa: E402
from wallet.passes import image_urls, images, tokens  # noqa: E402


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (wrk -d)")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds of load before the measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--cards", type=int, default=50, help="distinct images (one pass token per card)")
    parser.add_argument("--format", choices=["png", "svg"], default="png")
    parser.add_argument("--base-url", help="an already running server instead of starting gunicorn")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only (the rest to stderr)")
    return parser.parse_args()


def mint_paths(cards: int, extension: str) -> list[tuple[str, str]]:
    """(path, token) for `cards` cards' current tokens, as the pass-token endpoint hands them out."""
    call_command("migrate", verbosity=0)
    world = build_world()
    minted = []
    for card in [world.card] + [make_card(world.program) for _ in range(cards - 1)]:
        now = time.time()
        token = tokens.issue_token(card, now)
        minted.append((image_urls.qr_urls(card, token, now)[f"qr_{extension}_url"], token))
    return minted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(workers: int, workdir: Path):
    port = free_port()
    env = dict(os.environ, DJANGO_DEBUG="false")
    env.pop("TESSERA_ENV", None)  # development settings: the dev SECRET_KEY this process also read
    command = [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "--error-logfile", str(workdir / "gunicorn.log"), "--log-level", "warning", "config.wsgi"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()  # the master we started; it stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(base_url: str, path: str) -> tuple[int, dict, bytes]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def check_answers(base_url: str, minted: list[tuple[str, str]], kind: str, timeout: float = 30.0) -> None:
    """Wait for the server, then every URL must answer 200 with exactly the image of its token."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(base_url, minted[0][0])
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"no answer from {base_url} within {timeout:g} s")
            time.sleep(0.2)
    for path, token in minted:
        status, headers, body = get(base_url, path)
        expected = images.render(kind, token)
        if status != 200 or body != expected.body or headers.get("ETag") != expected.etag:
            sys.exit(f"{path} answered {status} {headers} {body[:200]!r}: not the image of its token")


def run_wrk(base_url: str, paths_file: Path, options, seconds: float, server_pid: int | None) -> dict:
    """harness.loadgen's wrk run (bench/loadgen/tessera.lua, scenario "paths"), as this benchmark's dict."""
    run = loadgen.run_wrk(base_url, "paths", paths_file, options.connections, seconds, server_pid,
                          "images", threads=options.threads)
    return {
        "requests": run.requests, "seconds": run.seconds, "per_second": round(run.per_second, 1),
        "p50_ms": run.p50_ms, "p90_ms": run.p90_ms, "p99_ms": run.p99_ms, "max_ms": run.max_ms,
        "errors": run.errors, "error_samples": run.error_samples,
        "mean_kb_per_response": round(run.bytes / max(run.requests, 1) / 1024, 2),
        "wrk_cpu_s": run.wrk_cpu_s, "server_cpu_s": run.server_cpu_s,
        "server_cpu_ms_per_request": round(1000 * run.server_cpu_s / max(run.requests, 1), 4),
        "machine_busy_percent": run.machine_busy_percent,
    }


def measure(options) -> dict:
    kind = f"qr_{options.format}"
    minted = mint_paths(options.cards, options.format)
    with tempfile.TemporaryDirectory(prefix="tessera-image-bench-") as workdir:
        workdir = Path(workdir)
        paths_file = workdir / "paths.txt"
        paths_file.write_text("".join(f"path {path}\n" for path, _ in minted))
        with contextlib.ExitStack() as stack:
            if options.base_url:
                base_url, server_pid = options.base_url, None
            else:
                base_url, server_pid = stack.enter_context(gunicorn(options.workers, workdir))
            check_answers(base_url, minted, kind)
            if options.warmup > 0:
                run_wrk(base_url, paths_file, options, options.warmup, server_pid)
            result = run_wrk(base_url, paths_file, options, options.seconds, server_pid)
    result.update(format=options.format, cards=options.cards, connections=options.connections,
                  threads=options.threads, workers=None if options.base_url else options.workers,
                  url_length=len(minted[0][0]))
    return result


def main():
    options = parse_options()
    with contextlib.redirect_stdout(sys.stderr) if options.json else contextlib.nullcontext():
        print(f"{options.cards} signed /i/ {options.format} URLs, wrk -t{options.threads} "
              f"-c{options.connections} -d{options.seconds:g}s, gunicorn -w {options.workers} ...", flush=True)
        result = measure(options)
        print(f"{result['per_second']:,.0f} requests/s ({result['requests']} in {result['seconds']:.1f} s), "
              f"p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, "
              f"errors {result['errors']} {result['error_samples'] or ''}")
        print(f"CPU: gunicorn {result['server_cpu_s']} s ({result['server_cpu_ms_per_request']} ms/request), "
              f"wrk {result['wrk_cpu_s']} s; machine busy {result['machine_busy_percent']}%; "
              f"{result['mean_kb_per_response']} kB/response; URL {result['url_length']} characters")
    if options.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
