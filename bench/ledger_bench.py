"""Ledger service throughput: purchases recorded per second through `record_purchase`.

Measures the service layer alone (no HTTP): lock card, insert purchase, ledger entry, outbox events,
idempotency record, in one transaction. Run against PostgreSQL for meaningful numbers:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench .venv/bin/python bench/ledger_bench.py

It creates its own merchant and cards in that database (use a scratch database) and checks the
ledger afterwards. Options: --purchases N (per thread), --threads T, --cards C.
"""
import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from tests.factories import make_card, make_merchant, make_program, make_store  # noqa: E402
from wallet.services import PurchaseRequest, record_purchase  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--purchases", type=int, default=300, help="purchases per thread")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cards", type=int, default=200)
    options = parser.parse_args()

    call_command("migrate", verbosity=0)
    merchant = make_merchant(name=f"Bench {uuid.uuid4().hex[:6]}")
    store = make_store(merchant)
    program = make_program(merchant)
    cards = [make_card(program) for _ in range(options.cards)]
    connection.close()

    latencies: list[float] = []
    lock = threading.Lock()

    def worker(thread_index: int):
        mine = []
        try:
            for n in range(options.purchases):
                card = cards[(thread_index * options.purchases + n) % len(cards)]
                sale = f"bench-{uuid.uuid4().hex}"
                started = time.perf_counter()
                record_purchase(
                    card,
                    PurchaseRequest(external_id=sale, amount=1234, currency=merchant.currency, store_id=store.pk),
                    idempotency_key=sale,
                )
                mine.append(time.perf_counter() - started)
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(options.threads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    latencies.sort()
    total = len(latencies)
    print(f"database: {connection.vendor}, threads: {options.threads}, cards: {options.cards}, purchases: {total}")
    print(f"throughput: {total / elapsed:.0f} purchases/s")
    print(
        f"latency ms: p50 {statistics.median(latencies) * 1000:.1f}, "
        f"p99 {latencies[int(total * 0.99) - 1] * 1000:.1f}"
    )
    call_command("check_ledger")


if __name__ == "__main__":
    main()
