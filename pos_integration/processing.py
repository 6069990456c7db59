"""Turning a stored, verified delivery into wallet changes; polling connectors for what webhooks missed.

Both are safe to run any number of times: the events they apply are keyed by (connection, vendor
id), so a retry, a replay from the admin or a poll that finds a sale a webhook already brought
changes nothing more. A repeat of a vendor event is not processed at all: the webhook view keeps it
as a duplicate of the delivery that owns the event (a unique index decides which one that is).
"""
import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.errors import TesseraError
from merchants.billing.policy import earning_paused_reason
from merchants.models import Merchant
from pos_integration.base import ConnectorError, SaleNotSeen
from pos_integration.connections import connector_for
from pos_integration.intake import apply_events, require_storable_text
from pos_integration.models import PosConnection, WebhookDelivery
from pos_integration.types import WebhookRequest
from wallet.errors import EarningPaused

logger = logging.getLogger(__name__)

MAX_AUTOMATIC_ATTEMPTS = 5
# Sales held while a merchant's subscription lapsed are replayed when it is paid again, but only
# this recent: a merchant back after months should not see that whole time earn at once.
HELD_DELIVERIES_MAX_DAYS = 30


def process_delivery(delivery_id: int, *, replay: bool = False) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.select_related("connection__merchant").get(pk=delivery_id)
    if delivery.status == WebhookDelivery.Status.REJECTED:
        return delivery  # never verified: never applied, not even by a replay
    if delivery.duplicate_of_id and delivery.status == WebhookDelivery.Status.PROCESSED and not replay:
        return delivery  # a repeat, acknowledged at intake: the delivery it repeats does the work
    connection = delivery.connection
    delivery.attempts += 1
    try:
        connector = connector_for(connection)
        parsed = connector.parse_webhook(
            WebhookRequest(body=bytes(delivery.body), headers=delivery.headers, url=connector.webhook_url,
                           received_at=delivery.received_at)
        )
        require_storable_text(parsed)  # before the event id is claimed: a NUL in it fails the same way
        if parsed.vendor_event_id and not delivery.vendor_event_id:
            _claim_event_id(delivery, parsed.vendor_event_id[:255])
        outcomes = apply_events(connection, parsed.events)
    except (ConnectorError, TesseraError, ValueError) as error:
        message = str(getattr(error, "message", None) or error)
        code = error.code if isinstance(error, TesseraError | ConnectorError) else ""
        return _fail(delivery, message, permanent=getattr(error, "permanent", False), code=code)
    except RecursionError:  # JSON nested too deeply for Python's parser: the same bytes never parse
        return _fail(delivery, "Bad input: the body nests too deeply to read.", permanent=True)
    except Exception as error:  # a connector bug must not lose the delivery: it stays replayable
        logger.exception("POS delivery %s failed", delivery.pk)
        return _fail(delivery, f"{type(error).__name__}: {error}")
    return _finish(delivery, outcomes)


def _claim_event_id(delivery: WebhookDelivery, event_id: str) -> None:
    """An id learnt only at parse time (a connector that cannot read it at intake) is recorded; if
    another delivery owns that event already, this one is recorded as its duplicate, as the unique
    index requires. Its events were applied all the same: they are keyed by their own ids."""
    delivery.vendor_event_id = event_id
    delivery.duplicate_of = (
        WebhookDelivery.objects.filter(
            connection_id=delivery.connection_id, vendor_event_id=event_id, duplicate_of__isnull=True
        ).exclude(pk=delivery.pk).first()
    )


def _finish(delivery: WebhookDelivery, outcomes: list) -> WebhookDelivery:
    delivery.status, delivery.outcome, delivery.error = WebhookDelivery.Status.PROCESSED, outcomes, ""
    delivery.processed_at, delivery.failure_code = timezone.now(), ""
    delivery.save(update_fields=[
        "status", "outcome", "error", "failure_code", "processed_at", "attempts", "vendor_event_id", "duplicate_of",
    ])
    return delivery


def _fail(delivery: WebhookDelivery, message: str, *, permanent: bool = False, code: str = "") -> WebhookDelivery:
    """A permanent failure (a malformed payload) is not retried automatically; a replay still can."""
    # A vendor's error may quote the bad input back, NUL and all: PostgreSQL text cannot hold one.
    delivery.status, delivery.error = WebhookDelivery.Status.FAILED, message.replace("\x00", "\\u0000")[:2000]
    delivery.failure_code = code[:40]
    if permanent:
        delivery.attempts = max(delivery.attempts, MAX_AUTOMATIC_ATTEMPTS)
    delivery.save(update_fields=["status", "error", "failure_code", "attempts", "vendor_event_id", "duplicate_of"])
    return delivery


def deliveries_to_retry(now: dt.datetime | None = None):
    """Deliveries whose task never ran (broker down) or failed, with attempts left, oldest first.
    Backoff: a delivery waits 2^attempts minutes after it was received before its next try."""
    now = now or timezone.now()
    stale = now - dt.timedelta(minutes=2)
    candidates = WebhookDelivery.objects.filter(
        Q(status=WebhookDelivery.Status.RECEIVED, received_at__lte=stale)
        | Q(status=WebhookDelivery.Status.FAILED, attempts__lt=MAX_AUTOMATIC_ATTEMPTS)
    ).order_by("pk")
    return [d.pk for d in candidates[:500] if d.received_at + dt.timedelta(minutes=2 ** d.attempts) <= now]


def held_deliveries(merchant_id: int, now: dt.datetime | None = None):
    """The merchant's deliveries refused because its earning was paused, received within the last
    HELD_DELIVERIES_MAX_DAYS, oldest first: what its next payment replays."""
    return _failed_recently(merchant_id, EarningPaused.code, now)


def refunds_awaiting_their_sale(merchant_id: int, now: dt.datetime | None = None):
    """The merchant's refunds that failed because their sale was not seen yet, received within the
    same window, oldest first. A refund sent while earning was paused, for a sale held then, fails
    this way until its retries run out: the held sales' replay applies it once its sale exists."""
    return _failed_recently(merchant_id, SaleNotSeen.code, now)


def _failed_recently(merchant_id: int, failure_code: str, now: dt.datetime | None):
    days = getattr(settings, "TESSERA_BILLING_HELD_SALES_DAYS", HELD_DELIVERIES_MAX_DAYS)
    since = (now or timezone.now()) - dt.timedelta(days=days)
    return WebhookDelivery.objects.filter(
        connection__merchant_id=merchant_id, status=WebhookDelivery.Status.FAILED,
        failure_code=failure_code, received_at__gte=since,
    ).order_by("received_at", "pk")


def replay_held_deliveries(merchant_id: int) -> dict[int, str]:
    """Replay, oldest first, the sales a merchant's POS sent while its earning was paused, now that it
    is not, then the refunds that failed for want of their sale; returns each delivery's new status.
    Safe to run twice, or after a manual replay: a delivery replayed already is no longer failed, and
    its events are keyed so each sale earns once and each refund reverses once."""
    merchant = Merchant.objects.get(pk=merchant_id)
    if earning_paused_reason(merchant):
        logger.info("POS deliveries held for merchant %s not replayed: earning is still paused", merchant_id)
        return {}
    replayed = {}
    # Sales first, then the refunds that were waiting for them: a refund replayed before its sale
    # would only fail again. A refund whose sale never came fails again, still waiting, harmlessly.
    for still_failed in (held_deliveries, refunds_awaiting_their_sale):
        for delivery_id in list(still_failed(merchant_id).values_list("pk", flat=True)):
            if not still_failed(merchant_id).filter(pk=delivery_id).exists():
                continue  # replayed meanwhile (by hand, or by the automatic retry)
            replayed[delivery_id] = process_delivery(delivery_id, replay=True).status
    logger.info("POS deliveries held while merchant %s's earning was paused, replayed: %s", merchant_id, replayed)
    return replayed


def poll_connection(connection: PosConnection) -> int:
    """Ask the vendor what happened since the last poll and apply it. Returns how many events.

    Events are applied one by one: one that fails (a sale in another currency, say) is logged and
    skipped, so it cannot hold the cursor back forever; the rest of the poll still lands.
    """
    connection = PosConnection.objects.get(pk=connection.pk)  # the cursor as stored, not as passed in
    connector = connector_for(connection)
    if not connector.supports_polling:
        return 0
    if earning_paused_reason(connection.merchant):
        # Sales polled now could not earn and would be skipped for good; keeping the cursor where it
        # is means the first poll after the merchant pays again picks them all up.
        logger.info("POS poll of connection %s held: earning is paused for its merchant", connection.pk)
        return 0
    result = connector.poll(dict(connection.poll_cursor))
    for event in result.events:
        try:
            apply_events(connection, [event])
        except (ConnectorError, TesseraError) as error:
            logger.error("POS poll of connection %s skipped an event %r: %s", connection.pk, event, error)
    PosConnection.objects.filter(pk=connection.pk).update(poll_cursor=result.cursor, last_polled_at=timezone.now())
    return len(result.events)
