"""Reconciliation report on a large ledger: one merchant with 10^6 entries on PostgreSQL.

Builds the data in bulk SQL (INSERT ... SELECT generate_series; cards' cached balances set from their
entries afterwards, so the report is clean and every check runs its full query), then times
`build_reconciliation` for a 30-day and a 365-day period, all stores and one store, and the page and
the CSV export through the real views (Django's test client, an owner logged in). Several runs each;
it prints min and median, and for one 365-day report the time of each SQL query it made.

    .venv/bin/python bench/reconciliation_bench.py                        # 10^6 entries, 5 runs
    .venv/bin/python bench/reconciliation_bench.py --entries 200000 --runs 3
    .venv/bin/python bench/reconciliation_bench.py --reuse                # time again, no new seed

The data: --cards customers, each with a welcome bonus, then earns (on one of --purchases purchases
at one of --stores stores), redemptions (some cancelled), refunds, expiries and adjustments spread
over the last 400 days; earn and refund entries point at real purchases so nothing is a discrepancy
except what a real ledger would hold. A second merchant gets --noise-entries entries of its own, so
the queries must find this merchant's rows among others' as in production.

It DROPS and recreates the database named by --database-url (default tessera_bench_reconciliation on
the local PostgreSQL; the name must contain "bench") and migrates it, unless --reuse finds the data of
an earlier run there. The ledger's report indexes (wallet migration 0008) cover what the queries
read: (merchant, occurred_at) INCLUDE (kind, delta, purchase, store) for the per-day sums and
(merchant, card) INCLUDE (delta) for the balance check.
"""
import argparse
import contextlib
import datetime as dt
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scratch_database import recreate_database  # noqa: E402  (bench/, the script's own folder)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tessera_bench_reconciliation"
HISTORY_DAYS = 400
TARGET_SECONDS = 2.0


# ---------------------------------------------------------------------------------------------
# Seed


def make_cards(program, count: int, prefix: str) -> None:
    """Users, customers, wallets and cards in bulk: the services would take minutes for 10^4 cards."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from wallet.models import Card, Customer, Wallet

    unusable = make_password(None)  # nobody logs in as these customers
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"{prefix}-{n}", password=unusable) for n in range(count)], batch_size=5000
    )
    customers = Customer.objects.bulk_create([Customer(user=user) for user in users], batch_size=5000)
    wallets = Wallet.objects.bulk_create([Wallet(customer=customer) for customer in customers], batch_size=5000)
    Card.objects.bulk_create(
        [Card(wallet=wallet, program=program, merchant_id=program.merchant_id, number=f"{prefix[:1]}{n:018d}")
         for n, wallet in enumerate(wallets)],
        batch_size=5000,
    )


def make_purchases(merchant, store_ids: list[int], count: int, now: dt.datetime) -> None:
    from django.db import connection

    from wallet.models import Card, Purchase

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH cards AS (
                SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM {Card._meta.db_table}
                WHERE merchant_id = %(merchant)s
            )
            INSERT INTO {Purchase._meta.db_table}
                (merchant_id, store_id, card_id, external_id, amount, currency, items, status, refunded_amount,
                 points_earned, points_reversed, occurred_at, created_at, receipt_code)
            SELECT %(merchant)s, (%(stores)s::bigint[])[1 + i %% %(store_count)s], cards.id,
                   'bench-' || i, 1000 + (i * 37) %% 9000, %(currency)s, '[]', 'completed', 0,
                   10 + (i * 37) %% 90, 0,
                   %(now)s - make_interval(secs => (i * 7919) %% (%(days)s * 86400)), %(now)s, ''
            FROM generate_series(1::bigint, %(count)s) AS i
            JOIN cards ON cards.n = i %% (SELECT count(*) FROM cards)
            """,
            {"merchant": merchant.pk, "stores": store_ids, "store_count": len(store_ids), "count": count,
             "currency": merchant.currency, "now": now, "days": HISTORY_DAYS},
        )


def make_entries(merchant, count: int, now: dt.datetime, validity_days: int | None = None) -> None:
    """`count` entries for `merchant`: a welcome per card first, then a mix of kinds, spread in time.

    Earn and refund entries point at the merchant's purchases (and their store); counter redeems and
    adjustments carry a store, app redeems, expiries and welcomes none, as the services write them.
    With `validity_days`, credits expire at the end of the (UTC) day that many days after they were earned.
    balance_after is the running sum per card; cards' cached balances are set from the sums after.
    """
    from django.db import connection

    from wallet.models import Card, LedgerEntry, Purchase

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Card._meta.db_table} WHERE merchant_id = %s", [merchant.pk])
        (card_count,) = cursor.fetchone()
        # One statement per execute: with server-side binding a parametrised query is a single statement.
        cursor.execute(
            f"""CREATE TEMP TABLE bench_cards AS
            SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM {Card._meta.db_table} WHERE merchant_id = %s""",
            [merchant.pk],
        )
        cursor.execute(
            f"""CREATE TEMP TABLE bench_purchases AS
            SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, store_id FROM {Purchase._meta.db_table}
            WHERE merchant_id = %s""",
            [merchant.pk],
        )
        cursor.execute("SELECT count(*) FROM bench_purchases")
        (purchase_count,) = cursor.fetchone()
        # kind by i mod 100: 0-59 earn, 60-74 redeem, 75-76 redemption_cancel, 77-81 refund, 82-86 expire,
        # 87-89 adjust, 90-99 earn again. The first card_count rows are the welcome bonuses.
        cursor.execute(
            f"""
            WITH raw AS (
                SELECT i,
                       CASE WHEN i <= %(cards)s THEN 'welcome'
                            WHEN i %% 100 < 60 OR i %% 100 >= 90 THEN 'earn'
                            WHEN i %% 100 < 75 THEN 'redeem'
                            WHEN i %% 100 < 77 THEN 'redemption_cancel'
                            WHEN i %% 100 < 82 THEN 'refund'
                            WHEN i %% 100 < 87 THEN 'expire'
                            ELSE 'adjust' END AS kind,
                       CASE WHEN i <= %(cards)s THEN i - 1 ELSE (i * 2654435761) %% %(cards)s END AS card_n,
                       (i * 48271) %% 2147483647 %% %(purchases)s AS purchase_n,  -- Lehmer: every purchase earns
                       CASE WHEN i <= %(cards)s THEN %(now)s - make_interval(days => %(days)s)
                            ELSE %(now)s - make_interval(secs => (i * 104729) %% (%(days)s * 86400)) END AS at
                FROM generate_series(1::bigint, %(count)s) AS i
            ), shaped AS (
                SELECT raw.i, raw.kind, c.id AS card_id, raw.at,
                       CASE raw.kind WHEN 'welcome' THEN 50 WHEN 'earn' THEN 10 + raw.i %% 90
                            WHEN 'redeem' THEN -(20 + raw.i %% 40) WHEN 'redemption_cancel' THEN 20 + raw.i %% 40
                            WHEN 'refund' THEN -(1 + raw.i %% 10) WHEN 'expire' THEN -(1 + raw.i %% 30)
                            ELSE CASE WHEN raw.i %% 2 = 0 THEN 5 ELSE -3 END END AS delta,
                       CASE WHEN raw.kind IN ('earn', 'refund') THEN p.id END AS purchase_id,
                       CASE WHEN raw.kind IN ('earn', 'refund') THEN p.store_id
                            WHEN raw.kind IN ('redeem', 'adjust') AND raw.i %% 3 = 0 THEN p.store_id END AS store_id,
                       CASE WHEN raw.kind = 'adjust' THEN 'Bench adjustment' ELSE '' END AS reason
                FROM raw
                JOIN bench_cards c ON c.n = raw.card_n
                JOIN bench_purchases p ON p.n = raw.purchase_n
            )
            INSERT INTO {LedgerEntry._meta.db_table}
                (merchant_id, card_id, kind, delta, balance_after, store_id, purchase_id, reason, source,
                 occurred_at, created_at, expires_at, offer_title)
            SELECT %(merchant)s, card_id, kind, delta,
                   SUM(delta) OVER (PARTITION BY card_id ORDER BY at, i), store_id, purchase_id, reason, 'system',
                   at, %(now)s,
                   CASE WHEN %(validity)s::int IS NOT NULL AND delta > 0 AND kind IN ('welcome', 'earn', 'adjust')
                        THEN date_trunc('day', at) + make_interval(days => %(validity)s::int + 1) END,
                   ''
            FROM shaped ORDER BY at, i
            """,
            {"cards": card_count, "purchases": purchase_count, "count": count, "now": now, "days": HISTORY_DAYS,
             "merchant": merchant.pk, "validity": validity_days},
        )
        cursor.execute(
            f"""
            UPDATE {Card._meta.db_table} c SET balance = s.total
            FROM (SELECT card_id, SUM(delta) AS total FROM {LedgerEntry._meta.db_table}
                  WHERE merchant_id = %s GROUP BY card_id) s
            WHERE s.card_id = c.id
            """,
            [merchant.pk],
        )
        cursor.execute("DROP TABLE bench_cards")
        cursor.execute("DROP TABLE bench_purchases")


def seed(options):
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:  # this session only: sort the window in memory, skip fsync waits
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET synchronous_commit = off")

    from merchants.models import StaffMember
    from tests.factories import make_merchant, make_program, make_store

    now = timezone.now()
    merchant = make_merchant(name="Bench reconciliation")
    stores = [make_store(merchant) for _ in range(options.stores)]
    # Points expire after a year and customers hear 14 days before: the liability page and the
    # warning job have real expiries to forecast.
    program = make_program(merchant, welcome_bonus=50, points_validity_days=365, expiry_warning_days=14)
    make_cards(program, options.cards, "bench")
    make_purchases(merchant, [s.pk for s in stores], options.purchases, now)
    make_entries(merchant, options.entries, now, program.points_validity_days)
    if options.noise_entries:
        other = make_merchant(name="Bench neighbour")
        other_store = make_store(other)
        other_program = make_program(other, welcome_bonus=50)
        make_cards(other_program, max(options.cards // 4, 1), "noise")
        make_purchases(other, [other_store.pk], max(options.purchases // 4, 1), now)
        make_entries(other, options.noise_entries, now)
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username="bench-owner", is_staff=True)
    StaffMember.objects.create(merchant=merchant, user=owner, role="owner")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # fresh statistics and visibility map, as autovacuum would leave them
    return merchant, stores, owner


def earlier_seed():
    """The merchant, stores and owner a previous run left in the database, or None."""
    from django.contrib.auth import get_user_model

    from merchants.models import Merchant

    merchant = Merchant.objects.filter(name="Bench reconciliation").first()
    owner = get_user_model().objects.filter(username="bench-owner").first()
    if merchant is None or owner is None:
        return None
    return merchant, list(merchant.stores.order_by("id")), owner


# ---------------------------------------------------------------------------------------------
# Timing


def timed(function, runs: int) -> tuple[float, float, object]:
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds), result


def query_breakdown(function) -> list[tuple[float, str]]:
    from django.db import connection

    recorded = []

    def wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            recorded.append((time.perf_counter() - started, " ".join(sql.split())[:110]))

    with connection.execute_wrapper(wrapper):
        function()
    return recorded


def run_timings(options, merchant, stores, owner, label: str) -> list[dict]:
    from django.test import Client

    from backoffice.reconciliation import build_reconciliation, local_today
    from backoffice.reconciliation_views import CSV_LISTED_PER_KIND, write_csv

    end = local_today(merchant)
    periods = {"30 days": end - dt.timedelta(days=29), "365 days": end - dt.timedelta(days=364)}
    client = Client()
    client.force_login(owner)
    results = []

    def line(name, fastest, median, extra=""):
        results.append({"case": f"{label}: {name}", "min_s": round(fastest, 3), "median_s": round(median, 3)})
        print(f"  {name:<34} min {fastest * 1000:7.0f} ms   median {median * 1000:7.0f} ms  {extra}")

    print(f"\n{label} (load average now {os.getloadavg()[0]:.2f})")
    for name, start in periods.items():
        fastest, median, report = timed(lambda s=start: build_reconciliation(merchant, s, end), options.runs)
        line(f"build_reconciliation, {name}", fastest, median,
             f"(net {report.points.net}, {report.sales.count} purchases, {report.discrepancy_total} discrepancies)")
        fastest, median, _ = timed(lambda s=start: build_reconciliation(merchant, s, end, stores[0]), options.runs)
        line(f"  one store, {name}", fastest, median)
    start = periods["365 days"]

    def csv_in_memory():
        report = build_reconciliation(merchant, start, end, listed_per_kind=CSV_LISTED_PER_KIND)
        out = io.StringIO()
        write_csv(out, report, absolute=lambda path: "https://tessera.example" + path)
        return out.getvalue()

    fastest, median, text = timed(csv_in_memory, options.runs)
    line("CSV export (report + write), 365 d", fastest, median, f"({len(text.splitlines())} lines)")
    query = {"merchant": merchant.pk, "start": start.isoformat(), "end": end.isoformat()}
    for name, url in (("page view, 365 days", "/admin/reports/reconciliation/"),
                      ("CSV view, 365 days", "/admin/reports/reconciliation.csv")):
        fastest, median, response = timed(lambda u=url: client.get(u, query), options.runs)
        assert response.status_code == 200, response.status_code
        line(name, fastest, median, f"({len(response.content) // 1024} KiB)")
    from backoffice.liability import build_liability

    fastest, median, liability = timed(lambda: build_liability(merchant), options.runs)
    line("build_liability", fastest, median, f"({liability.total.outstanding_points} points outstanding)")
    fastest, median, _ = timed(lambda: client.get("/admin/reports/liability/", {"merchant": merchant.pk}),
                               options.runs)
    line("liability page view", fastest, median)
    print("  queries of one 365-day build_reconciliation:")
    for seconds, sql in query_breakdown(lambda: build_reconciliation(merchant, start, end)):
        print(f"    {seconds * 1000:7.1f} ms  {sql}")
    return results


def time_expiry_warnings() -> None:
    """The hourly warning job over 10^6 entries: the first run warns every card with points expiring in
    the next 14 days; a second run, an hour later, finds them all warned and should cost little.
    Warnings are deleted afterwards (with their outbox events) so --reuse starts alike."""
    from django.db import connection

    from wallet.models import DomainEvent, ExpiryWarning
    from wallet.services.expiry_warnings import EVENT_TYPE, warn_expiring_points

    print("\nexpiry warnings (wallet.tasks.warn_expiring_points_task)")
    for run in ("first run", "next run"):
        started = time.perf_counter()
        written = warn_expiring_points()
        print(f"  {run:<34} {time.perf_counter() - started:7.2f} s     {len(written)} warnings written")
    ExpiryWarning.objects.all().delete()
    with connection.cursor() as cursor:  # the outbox is append-only for the ORM; this is a scratch database
        cursor.execute(f"DELETE FROM {DomainEvent._meta.db_table} WHERE event_type = %s", [EVENT_TYPE])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="dropped and recreated")
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger entries of the merchant")
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=5_000)
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--noise-entries", type=int, default=250_000, help="entries of a second merchant")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the database and the data of an earlier run")
    parser.add_argument("--json", action="store_true", help="print the timings as JSON only (the text to stderr)")
    options = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr) if options.json else contextlib.nullcontext():
        summary = measure(options)
    if options.json:
        print(json.dumps(summary))


def measure(options) -> dict:
    if not options.reuse:
        recreate_database(options.database_url)
    os.environ["DATABASE_URL"] = options.database_url
    os.environ.pop("TESSERA_ENV", None)
    os.environ["DJANGO_DEBUG"] = "false"  # no per-query log kept in memory

    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic needed here
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host is allowed; nothing else changes
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    earlier = options.reuse and earlier_seed()
    merchant, stores, owner = earlier or seed(options)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM wallet_ledgerentry WHERE merchant_id = %s", [merchant.pk])
        (entries,) = cursor.fetchone()
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
    how = "reused an earlier seed" if earlier else f"seeded in {time.perf_counter() - started:.1f} s"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM wallet_card WHERE merchant_id = %s", [merchant.pk])
        (cards,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM wallet_purchase WHERE merchant_id = %s", [merchant.pk])
        (purchases,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM wallet_ledgerentry WHERE merchant_id <> %s", [merchant.pk])
        (others,) = cursor.fetchone()
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"PostgreSQL {version}; {how}: {entries} entries of one merchant, {cards} cards, {purchases} purchases, "
          f"{len(stores)} stores; {others} entries of another merchant. Load average {load} on {os.cpu_count()} CPUs")
    results = run_timings(options, merchant, stores, owner, "migrated indexes")
    time_expiry_warnings()
    slowest = max(r["median_s"] for r in results if "build_reconciliation" in r["case"])
    verdict = "within" if slowest < TARGET_SECONDS else "OVER"
    print(f"\nslowest build_reconciliation median: {slowest:.3f} s ({verdict} the {TARGET_SECONDS:.0f} s target)")
    return {"entries": entries, "cards": cards, "purchases": purchases, "other_entries": others, "seeding": how,
            "runs": options.runs, "cases": results, "slowest_build_reconciliation_s": slowest}


if __name__ == "__main__":
    main()
