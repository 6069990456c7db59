"""Running the same action in many threads at once, for the PostgreSQL concurrency tests."""
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def run_together(count, action):
    """Run action(i) for i in range(count) in `count` threads released at the same instant; each
    thread closes its own database connection when done."""
    barrier = threading.Barrier(count)

    def worker(index):
        try:
            barrier.wait(timeout=30)
            return action(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))
