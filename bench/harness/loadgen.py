"""Driving the server: wrk (Debian's package, C and epoll) with bench/loadgen/tessera.lua, and the CPU
each side spent, so the results say what the load generator cost next to the server it measured.

wrk rather than a Python generator: on this machine's 2 cores the generator shares the CPUs with
gunicorn and PostgreSQL, so every millisecond it spends is taken from the server. `python_client_cost`
measures a Python generator (httpx, one keep-alive client per thread, as counter_http_bench drives
the counter) on the same scenario for the comparison the results print.
"""
import json
import os
import resource
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "loadgen" / "tessera.lua"
TICKS = os.sysconf("SC_CLK_TCK")


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def _processes():
    """(pid, parent pid, CPU seconds user + system) of every process, from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        after = text.rsplit(")", 1)[1].split()  # fields after the command name
        yield int(entry), int(after[1]), (int(after[11]) + int(after[12])) / TICKS


def process_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) of a process and its children (gunicorn's master and workers)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for pid, ppid, cpu in _processes():
        children.setdefault(ppid, []).append(pid)
        times[pid] = cpu
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def child_pids(parent_pid: int) -> list[int]:
    """A process's direct children (gunicorn's workers under its master), sorted."""
    return sorted(pid for pid, ppid, _cpu in _processes() if ppid == parent_pid)


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class WrkRun:
    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict
    error_samples: list
    wrk_cpu_s: float
    server_cpu_s: float
    machine_busy_percent: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(base_url: str, scenario: str, data_file: Path, connections: int, seconds: float, server_pid: int,
            run_id: str, threads: int = 2, timeout_s: int = 10) -> WrkRun:
    command = [
        wrk_binary(), f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s", "-s", str(SCRIPT), base_url, "--", scenario, run_id, str(data_file),
    ]
    cpu_before, server_before, busy_before = children_cpu(), process_tree_cpu(server_pid), machine_busy()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    cpu_after, server_after, busy_after = children_cpu(), process_tree_cpu(server_pid), machine_busy()
    line = next((line for line in finished.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stdout[-2000:]} {finished.stderr[-2000:]}")
    data = json.loads(line.removeprefix("WRKJSON "))
    detail = {name: data[name] for name in ("connect_errors", "read_errors", "write_errors", "status_errors",
                                            "timeouts")}
    busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
    return WrkRun(
        requests=data["requests"], seconds=data["duration_s"], bytes=data["bytes"], p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"], max_ms=data["max_ms"], errors=sum(detail.values()), error_detail=detail,
        error_samples=data["error_samples"], wrk_cpu_s=round(cpu_after - cpu_before, 3),
        server_cpu_s=round(server_after - server_before, 3), machine_busy_percent=round(100 * busy, 1),
    )


def python_client_cost(base_url: str, requests: list[tuple[str, str, dict]], connections: int, seconds: float,
                       server_pid: int) -> dict:
    """A Python generator on the same requests: httpx, one keep-alive client per thread. Returns its
    CPU per request next to the server's (both in ms)."""
    import httpx

    stop = time.perf_counter() + seconds
    counts, errors = [0] * connections, [0] * connections

    def worker(index: int):
        with httpx.Client(base_url=base_url, timeout=30) as client:
            n = index
            while time.perf_counter() < stop:
                method, path, options = requests[n % len(requests)]
                n += connections
                response = client.request(method, path, **options)
                counts[index] += 1
                errors[index] += response.status_code >= 400

    cpu_before, server_before = time.process_time(), process_tree_cpu(server_pid)
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    client_cpu, server_cpu = time.process_time() - cpu_before, process_tree_cpu(server_pid) - server_before
    done = max(sum(counts), 1)
    return {
        "requests": sum(counts), "per_second": round(sum(counts) / seconds, 1), "errors": sum(errors),
        "client_cpu_ms_per_request": round(1000 * client_cpu / done, 3),
        "server_cpu_ms_per_request": round(1000 * server_cpu / done, 3),
    }
