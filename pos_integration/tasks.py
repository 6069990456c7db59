"""Celery tasks of the POS side: process a delivery, retry the stuck ones, poll the connectors."""
import logging

from celery import shared_task

from pos_integration import registry
from pos_integration.models import PosConnection
from pos_integration.processing import (
    deliveries_to_retry,
    poll_connection,
    process_delivery,
    replay_held_deliveries,
)

logger = logging.getLogger(__name__)


@shared_task(name="pos_integration.process_delivery")
def process_delivery_task(delivery_id: int) -> str:
    return process_delivery(delivery_id).status


@shared_task(name="pos_integration.retry_deliveries")
def retry_deliveries_task() -> int:
    ids = deliveries_to_retry()
    for delivery_id in ids:
        process_delivery(delivery_id)
    return len(ids)


@shared_task(name="pos_integration.replay_held_deliveries")
def replay_held_deliveries_task(merchant_id: int) -> int:
    """Started by billing when a merchant's earning resumes: its sales held meanwhile earn now."""
    return len(replay_held_deliveries(merchant_id))


@shared_task(name="pos_integration.poll_connections")
def poll_connections_task() -> int:
    """Reconciliation: connectors that can poll are asked for what their webhooks may have missed."""
    polling = [key for key, cls in registry.connectors().items() if cls.supports_polling]
    total = 0
    for connection in PosConnection.objects.filter(is_active=True, connector__in=polling):
        try:
            total += poll_connection(connection)
        except Exception:  # one vendor being down must not stop the others' polls
            logger.exception("Polling POS connection %s failed", connection.pk)
    return total
