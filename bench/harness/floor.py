"""The SQL floor: pgbench running bench/floor/*.sql (the earn transaction, the scan's reads) against the
run's database, with per-transaction logs for the latency percentiles."""
import re
import resource
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

FLOOR_DIR = Path(__file__).resolve().parents[1] / "floor"


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def run_pgbench(database_url: str, script: str, clients: int, seconds: float, variables: dict) -> dict:
    parts = urlsplit(database_url)
    with tempfile.TemporaryDirectory(prefix="tessera-floor-") as logs:
        command = [
            "pgbench", "-n", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
            "-U", parts.username or "postgres", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(max(1, round(seconds))), "-f", str(FLOOR_DIR / script), "-l",
            "--log-prefix", f"{logs}/tx",
        ]
        for name, value in variables.items():
            command += ["-D", f"{name}={value}"]
        command.append(parts.path.lstrip("/"))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = usage.ru_utime + usage.ru_stime
        finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if finished.returncode != 0:
            raise RuntimeError(f"pgbench {script} failed: {finished.stderr[-2000:]}{finished.stdout[-1000:]}")
        latencies = []  # log lines: client_id transaction_no time_us script_no time_epoch time_us_part
        for log in Path(logs).glob("tx*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
    output = finished.stdout
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", output)
    return {
        "script": script, "clients": clients, "seconds": round(seconds), "tps": round(tps, 1),
        "transactions": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 2), "p90_ms": round(percentile(latencies, 0.90), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "errors": int(failed.group(1)) if failed else 0,
        "pgbench_cpu_s": round(usage.ru_utime + usage.ru_stime - before, 3),
    }
