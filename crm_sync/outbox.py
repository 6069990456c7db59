"""Hearing that outbox events were committed, to ship them at once instead of at the next sweep.

Registered in TESSERA_OUTBOX_LISTENERS; the core calls it after commit with the merchant id and
knows nothing of CRMs. Merchants with a connection are remembered for a minute, so a merchant
without one costs no query per purchase and no broker message.
"""
from django.core.cache import cache

from crm_sync.models import CrmConnection

CACHE_KEY = "crm_sync:connected-merchants"


def connected_merchant_ids() -> set[int]:
    ids = cache.get(CACHE_KEY)
    if ids is None:
        ids = set(CrmConnection.objects.filter(is_paused=False).values_list("merchant_id", flat=True).distinct())
        cache.set(CACHE_KEY, ids, 60)
    return ids


def forget_connected_merchants() -> None:
    cache.delete(CACHE_KEY)


def events_committed(merchant_id: int | None) -> None:
    if merchant_id is None or merchant_id not in connected_merchant_ids():
        return
    from crm_sync.tasks import deliver_merchant_task

    deliver_merchant_task.delay(merchant_id)
