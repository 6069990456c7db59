"""Celery tasks of the CRM side. All idempotent and acknowledged late (settings): a worker killed
mid-task leaves the rows as they were, and the task or the next sweep does the work again."""
import time

from celery import shared_task

from crm_sync.delivery import deliver_batch
from crm_sync.fanout import fan_out
from crm_sync.models import CrmConnection

TIME_BUDGET_SECONDS = 25.0


def drain(connection_id) -> int:
    """Fan out, then send batches until nothing is due or the time budget is spent."""
    fan_out(connection_id)
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < TIME_BUDGET_SECONDS:
        report = deliver_batch(connection_id)
        sent += report.sent
        if report.busy or report.sent == 0 or report.delivered == 0:
            break  # nothing due, another worker has it, or the CRM is failing: the sweep comes back
    return sent


@shared_task(name="crm_sync.deliver_merchant")
def deliver_merchant_task(merchant_id: int) -> int:
    """Run after a transaction that wrote outbox events commits: ship them without waiting for the sweep."""
    return sum(drain(pk) for pk in CrmConnection.objects.filter(merchant_id=merchant_id, is_paused=False)
               .values_list("pk", flat=True))


@shared_task(name="crm_sync.sweep")
def sweep_task() -> int:
    """Beat: every active connection, whatever the on-commit tasks did or missed (broker down, crash)."""
    return sum(drain(pk) for pk in CrmConnection.objects.filter(is_paused=False).values_list("pk", flat=True))
