"""Hearing that outbox events were committed, to ship them at once instead of at the next sweep.

Registered in TESSERA_OUTBOX_LISTENERS; the core calls it after commit with the merchant id and
knows nothing of CRMs. Merchants with a connection are remembered for a minute, so a merchant
without one costs no query per purchase and no broker message.

The call runs inside the request that recorded the purchase (on commit, before the till gets its
answer), so it only publishes a message, and never waits on the broker: one try, with short socket
timeouts. A broker that is down, refusing or hung costs the till at most PUBLISH_TIMEOUT_SECONDS
per socket step; the error goes to the core's listener log and the events wait in the outbox for
the beat sweep (`crm_sync.sweep`), which ships them once the broker is back. After a failed publish
this process does not try that broker again for BROKER_REST_SECONDS, so during an outage one sale
in that time pays the timeout, not every sale. Celery's defaults would retry a refused publish for
most of a second, and wait forever on a broker that accepts the connection but never answers
(kombu's Redis transport has no socket timeout unless one is set).
"""
import threading
import time
from urllib.parse import urlsplit

from django.core.cache import cache

from crm_sync.models import CrmConnection

CACHE_KEY = "crm_sync:connected-merchants"
PUBLISH_TIMEOUT_SECONDS = 0.5
BROKER_REST_SECONDS = 10.0

_pools: dict[str, object] = {}  # broker URL -> kombu connection pool used only for these publishes
_pools_lock = threading.Lock()
_failed_until: dict[str, float] = {}  # broker URL -> time.monotonic() before which we do not try it


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

    app = deliver_merchant_task.app
    if app.conf.task_always_eager:
        deliver_merchant_task.delay(merchant_id)  # no broker (tests): the task runs here
        return
    url = app.conf.broker_write_url
    if time.monotonic() < _failed_until.get(url, 0.0):
        return  # the broker failed a moment ago: the sweep ships these events
    with _publish_pool(app, url).acquire(block=True, timeout=PUBLISH_TIMEOUT_SECONDS) as connection:
        try:
            deliver_merchant_task.apply_async((merchant_id,), connection=connection, retry=False)
        except Exception:
            _failed_until[url] = time.monotonic() + BROKER_REST_SECONDS
            connection.collect()  # drop the broken sockets: the next publish connects afresh
            raise


def _publish_pool(app, url: str):
    """A pool of broker connections with short timeouts, kept apart from the app's own pool so that
    workers and beat keep their settings (a consumer's long poll must not time out after 0.5 s)."""
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            connection = app.connection_for_write(
                url, connect_timeout=PUBLISH_TIMEOUT_SECONDS, transport_options=_timeouts(url)
            )
            pool = _pools[url] = connection.Pool(limit=app.conf.broker_pool_limit)
        return pool


def _timeouts(url: str) -> dict:
    """One connection attempt (kombu would try again every 2 s until its timeout), and socket
    timeouts in the transport's own words."""
    options = {"max_retries": 0}
    scheme = urlsplit(url).scheme
    if scheme.startswith(("redis", "sentinel")):
        options.update(socket_timeout=PUBLISH_TIMEOUT_SECONDS, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS)
    elif scheme in ("amqp", "amqps", "pyamqp"):
        options.update(read_timeout=PUBLISH_TIMEOUT_SECONDS, write_timeout=PUBLISH_TIMEOUT_SECONDS)
    return options
