"""Pass throughput: tokens issued and verified per second, and images rendered per second.

Runs against a scratch in-memory SQLite database (nothing is written to the development database):

    .venv/bin/python bench/pass_bench.py [--seconds 1.0]

Single-threaded, one process; verification includes its database reads (key and card). Image rows
render every time (images.qr_png and friends), except "QR PNG cached": images.cached, the per-process
LRU the endpoints use, on one token (a hit after the first call).
"""
import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("DATABASE_URL", None)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

django.setup()
settings.DATABASES["default"]["NAME"] = ":memory:"  # before the first connection: a scratch database

from django.core.management import call_command  # noqa: E402

from tests.factories import build_world  # noqa: E402
from wallet.passes import images, keys, tokens  # noqa: E402


def rate(function, seconds: float) -> tuple[float, int]:
    function()  # warm up (key creation, caches)
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        function()
        count += 1
    return count / elapsed, count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print the rates as JSON only (the table to stderr)")
    options = parser.parse_args()
    rates = {}
    with contextlib.redirect_stdout(sys.stderr) if options.json else contextlib.nullcontext():
        measure(options, rates)
    if options.json:
        print(json.dumps({"per_second": rates, "seconds": options.seconds}))


def measure(options, rates: dict) -> None:
    call_command("migrate", verbosity=0)
    world = build_world()
    card, merchant = world.card, world.merchant
    token = tokens.issue_token(card)
    published = {k["key_id"]: keys.b64url_decode(k["public_key"]) for k in keys.public_keys(merchant)}
    period, drift = card.program.token_period_seconds, card.program.token_drift_steps
    assert tokens.verify_token(token, merchant=merchant).ok

    cases = [
        ("issue_token", lambda: tokens.issue_token(card)),
        ("verify_token (online, DB)", lambda: tokens.verify_token(token, merchant=merchant)),
        ("verify_token_offline", lambda: tokens.verify_token_offline(token, published, period, drift)),
        ("QR PNG (pass token)", lambda: images.qr_png(token)),  # uncached: the cache would flatter it
        ("QR PNG cached", lambda: images.cached("qr_png", token)),
        ("QR SVG (pass token)", lambda: images.qr_svg(token)),
        ("Code 128 PNG (card number)", lambda: images.code128_png(card.number)),
        ("Code 128 SVG (card number)", lambda: images.code128_svg(card.number)),
    ]
    print(f"token length: {len(token)} chars; database: in-memory SQLite; {options.seconds:g} s per row")
    print(f"{'operation':<30} {'per second':>12} {'ms each':>9} {'runs':>7}")
    for name, function in cases:
        per_second, runs = rate(function, options.seconds)
        rates[name] = round(per_second, 1)
        print(f"{name:<30} {per_second:>12,.0f} {1000 / per_second:>9.3f} {runs:>7}")


if __name__ == "__main__":
    main()
