"""The issue's targets checked against one run's numbers, the printed table, the machine description."""
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
        with open("/proc/meminfo") as info:
            memory_kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        memory_kib = 0
    return {
        "hostname": platform.node(), "cpu": model, "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1), "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _find(scenarios: list[dict], name: str, connections: int | None = None) -> dict | None:
    matches = (s for s in scenarios if s["name"] == name and connections in (None, s["connections"]))
    return next(matches, None)


def targets(results: dict) -> list[dict]:
    """Each of the issue's targets: the measured value, the target, and whether this run met it."""
    scenarios, rows = results["scenarios"], []

    def add(what, value, target, met, unit=""):
        rows.append({"target": what, "value": value, "goal": target, "unit": unit,
                     "met": None if value is None else bool(met)})

    def ratio_target(name, connections, minimum, label, clean=False):
        scenario = _find(scenarios, name, connections)
        ratio = scenario and scenario.get("ratio_to_floor")
        ok = ratio is not None and ratio >= minimum
        if clean and scenario:
            ok = ok and scenario["errors"] == 0
        add(label, None if ratio is None else round(100 * ratio, 1), f">= {100 * minimum:.0f}", ok, "% of floor")

    ledger_ok = results.get("check_ledger") == "ok"
    purchase = _find(scenarios, "purchase", 32)
    ratio = purchase and purchase.get("ratio_to_floor")
    add("purchase, random cards, 32 conns (0 errors, check_ledger clean)",
        None if ratio is None else round(100 * ratio, 1), ">= 25", ratio is not None and ratio >= 0.25
        and purchase["errors"] == 0 and ledger_ok, "% of floor")
    ratio_target("scan", 32, 0.40, "scan, 32 conns")
    ratio_target("hot_card", 32, 0.20, "purchase on one hot card, 32 conns (0 errors)", clean=True)
    for name in ("scan", "purchase"):
        scenario = _find(scenarios, name, 8)
        p99 = scenario and scenario["p99_ms"]
        add(f"{name} p99 at 8 conns", p99, "< 40", p99 is not None and p99 < 40, "ms")
    passes = results.get("passes") or {}
    qr = passes.get("QR PNG (pass token)")
    add("QR PNG rendering per core, uncached (pass_bench)", qr and round(qr), ">= 1000", qr and qr >= 1000, "/s")
    cached = results.get("images") or {}
    rate = cached.get("per_second")
    add("cached QR PNG responses (signed /i/ URLs, 50 cards), 32 conns", rate and round(rate), ">= 3000",
        rate is not None and rate >= 3000 and cached.get("errors") == 0, "/s")
    crm = results.get("crm") or {}
    best = max((row["events_per_s"] for row in crm.get("throughput", [])), default=None)
    add("CRM outbox drain to a local fake CRM, batched", best and round(best), ">= 2000", best and best >= 2000,
        "events/s")
    recon = results.get("reconciliation") or {}
    slowest = recon.get("slowest_build_reconciliation_s")
    add(f"reconciliation report, {recon.get('entries', 0):,} entries", slowest, "< 2", slowest is not None
        and slowest < 2, "s")
    return rows


def print_table(results: dict) -> None:
    info, commit = results["machine"], results["git"]
    print(f"\n{results['date']}  {info['cpu']} ({info['cores']} cores, {info['memory_gib']} GiB), "
          f"commit {commit['commit'][:10]}{' (uncommitted changes)' if commit['dirty'] else ''}, "
          f"{results['mode']} mode; load average before {results['load_before']}, after {results['load_after']}")
    print(f"server: gunicorn config.wsgi, {results['server']['workers']} sync workers; load generator: "
          f"{results['load_generator']['name']}")
    print(f"\n{'floor (pgbench)':<28} {'conns':>5} {'tx/s':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'errors':>6}")
    for floor in results["floors"]:
        print(f"{floor['name']:<28} {floor['clients']:>5} {floor['tps']:>8.0f} {floor['p50_ms']:>7.1f} "
              f"{floor['p90_ms']:>7.1f} {floor['p99_ms']:>7.1f} {floor['errors']:>6}")
    print(f"\n{'HTTP scenario':<28} {'conns':>5} {'req/s':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'errors':>6} "
          f"{'floor':>9} {'% floor':>8} {'wrk CPU':>8}")
    for s in results["scenarios"]:
        ratio = "-" if s.get("ratio_to_floor") is None else f"{100 * s['ratio_to_floor']:.1f}"
        print(f"{s['name']:<28} {s['connections']:>5} {s['per_second']:>8.0f} {s['p50_ms']:>7.1f} {s['p90_ms']:>7.1f} "
              f"{s['p99_ms']:>7.1f} {s['errors']:>6} {s.get('floor') or '-':>9} {ratio:>8} "
              f"{s['wrk_cpu_share_of_server']:>7.0%}")
        for sample in s.get("error_samples", [])[:2]:
            print(f"    error sample: {sample}")
    print("latencies in ms; % floor = requests/s over the floor's transactions/s at the same connections; "
          "wrk CPU = wrk's CPU time / gunicorn's")
    generator = results["load_generator"].get("python_comparison")
    if generator:
        print(f"Python generator (httpx, {generator['connections']} threads, scan): "
              f"{generator['client_cpu_ms_per_request']} ms CPU per request vs wrk's "
              f"{generator['wrk_cpu_ms_per_request']} ms; the server spent {generator['server_cpu_ms_per_request']} ms")
    passes = results.get("passes") or {}
    if passes:
        print("\npass_bench (one thread = one core): " + ", ".join(f"{k} {v:,.0f}/s" for k, v in passes.items()))
    mix = results.get("hardening")
    if mix:
        print(f"\nhardening mix (4 scan, 4 purchase, 1 redeem, 1 wallet read in 10; {mix['connections']} conns, "
              f"{mix['seconds']:.0f} s, webhooks beside it): {mix['per_second']:,.0f} req/s, errors {mix['errors']}")
        print(f"{'endpoint':<10} {'requests':>9} {'errors':>7} {'p50':>7} {'p99':>7}   (server time, ms)")
        for name, row in mix["endpoints"].items():
            p50, p99 = row["p50_ms"] or "-", row["p99_ms"] or "-"
            print(f"{name:<10} {row['requests']:>9} {row['errors']:>7} {p50:>7} {p99:>7}")
        print(f"webhooks: {mix['webhooks_sent']} sent {mix['webhook_answers']}, {mix['webhooks_processed']} processed "
              f"by the Celery worker, {mix['webhook_sales_earned']} sales earned")
    restart = results.get("db_restart")
    if restart:
        print_db_restart(restart)
    images = results.get("images") or {}
    if "per_second" in images:
        print(f"image_bench (signed /i/ URLs, {images['cards']} cards, {images['connections']} conns): "
              f"{images['per_second']:,.0f}/s, p50 {images['p50_ms']} ms, p99 {images['p99_ms']} ms, "
              f"errors {images['errors']}")
    for row in (results.get("crm") or {}).get("throughput", []):
        print(f"crm_bench: batch {row['batch_size']}: {row['events_per_s']:,.0f} events/s")
    recon = results.get("reconciliation") or {}
    if "slowest_build_reconciliation_s" in recon:
        print(f"reconciliation_bench: slowest build_reconciliation median {recon['slowest_build_reconciliation_s']} s "
              f"over {recon['entries']:,} entries")
    for name in ("passes", "images", "crm", "reconciliation"):
        if "failed" in (results.get(name) or {}):
            print(f"{name}: FAILED (see results.json)")
    print(f"check_ledger: {results['check_ledger']}")
    print(f"\n{'target':<66} {'value':>8} {'goal':>8}  met")
    for row in results["targets"]:
        value = "-" if row["value"] is None else f"{row['value']:,}"
        met = {True: "yes", False: "NO", None: "not run"}[row["met"]]
        print(f"{row['target']:<66} {value:>8} {row['goal']:>8}  {met}  {row['unit']}")


def print_db_restart(run: dict) -> None:
    restart, phases, retries = run["restart"], run["phases"], run["retries"]
    print(f"\ndatabase restart under load ({run['threads']} tills, {run['seconds']:.0f} s, restart at "
          f"{restart['began_s']} s taking {restart['seconds']} s): {run['requests']} requests, "
          + ", ".join(f"{name} {row['requests']} ({row['errors']} errors)" for name, row in phases.items()))
    print(f"errors {run['errors']} {run['error_statuses']}, all in the error shape: "
          f"{'yes' if run['errors_all_shaped'] else 'NO'}; connection errors {run['connection_errors']}; "
          f"tills saw failures for {run['outage_s']} s (answering again {run['back_after_restart_began_s']} s "
          f"after the restart began; first success {run['first_success_after_restart_s']} s after the command "
          f"returned); errors in the last {run['tail_seconds']:.0f} s: "
          f"{run['tail_errors']}; same gunicorn workers: {'yes' if run['gunicorn_workers']['same'] else 'NO'}")
    print(f"failed purchases retried with their key: {run['purchases_failed']} -> {retries['fresh']} recorded now, "
          f"{retries['replayed']} replayed, {retries['failed']} failed; sales with points "
          f"{run['purchases_with_points']} = keys answered 201 {run['keys_succeeded']} "
          f"(lost {run['purchases_lost']}, doubled "
          f"{run['purchases_with_two_entries']}); check_ledger {run['check_ledger']}; "
          f"{'PASSED' if run['passed'] else 'FAILED'}")
