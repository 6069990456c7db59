"""The hourly expiry sweep on a large ledger: what a quiet hour costs, with and without the sweep's mark.

Copies the reconciliation benchmark's ledger (25,000 cards, 10^6 entries over 400 days, lots that
expired long ago on most cards; `bench/reconciliation_bench.py` builds it, --reuse keeps it) into a
scratch database, migrates it, and times three sweeps (wallet.services.expire_due_points):

1. the first sweep: no mark yet, every card with a lot past its expiry is looked at and expires;
2. an hour later, nothing new: only cards whose expirable points can have changed are looked at;
3. the same hour with the mark removed: every card with a balance and an old lot is locked and
   found to owe nothing (what every hourly run cost before the mark existed).

    .venv/bin/python bench/expiry_bench.py
    .venv/bin/python bench/expiry_bench.py --source tessera_bench_all_recon --target tessera_bench_expiry
"""
import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def copy_database(base_url: str, source: str, target: str) -> None:
    import psycopg
    from psycopg import sql

    if "bench" not in target:
        sys.exit(f"refusing to drop {target!r}: the benchmark database's name must contain 'bench'")
    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [source]).fetchone():
            sys.exit(f"no database {source!r}: run bench/reconciliation_bench.py first (it builds the ledger)")
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--source", default="tessera_bench_all_recon", help="the reconciliation bench's database")
    parser.add_argument("--target", default="tessera_bench_expiry", help="dropped and recreated")
    options = parser.parse_args()
    copy_database(options.server, options.source, options.target)
    os.environ["DATABASE_URL"] = f"{options.server}/{options.target}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from wallet.models import Card, ExpirySweep, LedgerEntry
    from wallet.services import expire_due_points

    call_command("migrate", verbosity=0)
    connection.cursor().execute("ANALYZE")
    cards = Card.objects.count()
    entries = LedgerEntry.objects.count()
    now = timezone.now()

    def sweep(label: str, at: dt.datetime) -> None:
        started = time.perf_counter()
        expired = expire_due_points(now=at)
        print(f"{label:<46} {time.perf_counter() - started:8.2f} s  {len(expired):>6} cards expired")

    print(f"{cards:,} cards, {entries:,} entries")
    sweep("first sweep (no mark: every card with old lots)", now)
    sweep("an hour later, nothing new", now + dt.timedelta(hours=1))
    ExpirySweep.objects.all().delete()
    sweep("the same hour without the mark (the old sweep)", now + dt.timedelta(hours=1))


if __name__ == "__main__":
    main()
