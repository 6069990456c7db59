"""A real Celery worker process takes a task off the configured broker and runs it.

Embedded default: kombu's SQLite-backed transport (no server). CI: Redis via CELERY_BROKER_URL,
where REQUIRE_SERVICES=1 turns an unreachable Redis into a failure rather than a skip.
"""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from config.celery import app
from core.tasks import ping_task

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.broker


def test_a_real_worker_runs_a_task_sent_through_the_broker(broker_url, tmp_path):
    queue = f"ping-{uuid.uuid4().hex[:8]}"
    marker, token = tmp_path / "ran.txt", uuid.uuid4().hex
    env = {**os.environ, "CELERY_BROKER_URL": broker_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        with app.connection_for_write(broker_url) as connection:
            ping_task.apply_async(args=[str(marker), token], queue=queue, connection=connection)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not marker.exists() and worker.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), f"worker did not run the task; exit={worker.poll()}"
        assert marker.read_text() == token
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert "Traceback" not in output, output
