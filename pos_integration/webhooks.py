"""`/hooks/pos/<connection id>/`: where POS systems deliver their webhooks.

In a fixed order (STYLE.md habit 7): find the connection from the URL; cap the body (413) before
any signature work, judging the declared length before reading a byte; verify over the raw bytes
(the connector's check); keep the delivery whatever the verdict (a rejected one, up to
POS_REJECTED_DELIVERIES_KEPT_PER_HOUR per connection, is the only thing a bad request writes; a
repeat of a vendor event is kept as a duplicate of the first, and a unique index decides which is
first, so two copies arriving at once cannot both be processed); answer at once; parse and apply
in a Celery task after commit, so a slow vendor API (Clover must be asked for the payment) never
makes the vendor's request time out.
What "verified" means is the connector's call: Clover's one-time URL verification request carries
no auth code and is accepted (with no events) so the merchant can read the code it holds.
"""
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import error_body
from core.request_body import capped_body
from core.throttling import count_in_window
from pos_integration.base import WebhookRejected
from pos_integration.connections import connector_for
from pos_integration.models import PosConnection, WebhookDelivery
from pos_integration.types import WebhookRequest

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
# Anyone who knows a connection's URL can post to it; what an unverified request may store is capped.
MAX_REJECTED_BODY_BYTES = 8 * 1024
MASK = "(masked)"


def request_headers(request) -> dict:
    return {name.lower(): value for name, value in request.headers.items()}


def stored_headers(headers: dict, secret_headers) -> dict:
    secret = {name.lower() for name in secret_headers} | {"authorization", "cookie"}
    return {name: (MASK if name in secret else value) for name, value in headers.items()}


@csrf_exempt
@require_POST
def pos_webhook(request, connection_id):
    connection = PosConnection.objects.filter(pk=connection_id, is_active=True).select_related("merchant").first()
    if connection is None:
        return JsonResponse(error_body("not_found", "No active POS connection here."), status=404)
    body = capped_body(request, MAX_BODY_BYTES)
    if body is None:
        return JsonResponse(error_body("payload_too_large", "The body is too large."), status=413)
    connector = connector_for(connection)
    headers = request_headers(request)
    incoming = WebhookRequest(body=body, headers=headers, url=connector.webhook_url, received_at=timezone.now())
    delivery = WebhookDelivery(
        connection=connection, headers=stored_headers(headers, connector.secret_headers), body=body,
    )
    try:
        connector.verify_webhook(incoming)
    except WebhookRejected as rejected:
        if _keep_rejected(connection):
            delivery.status, delivery.rejection_reason = WebhookDelivery.Status.REJECTED, rejected.reason[:120]
            delivery.body = body[:MAX_REJECTED_BODY_BYTES]
            delivery.save()
        logger.warning("POS webhook rejected for connection %s: %s", connection.pk, rejected.reason)
        return JsonResponse(error_body("webhook_rejected", "The webhook could not be verified."), status=401)
    delivery.status = WebhookDelivery.Status.RECEIVED
    try:
        delivery.vendor_event_id = (connector.webhook_event_id(incoming) or "")[:255]
        if "\x00" in delivery.vendor_event_id:
            delivery.vendor_event_id = ""  # unstorable: processing refuses the delivery as bad input
    except Exception:  # noqa: BLE001 - an unreadable id only costs the audit list a column
        delivery.vendor_event_id = ""
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: losing the insert race must not undo the rest
                delivery.save()
        except IntegrityError:
            if not delivery.vendor_event_id:
                raise  # not the event's unique index: a real fault
            _save_as_duplicate(delivery)
        else:
            transaction.on_commit(lambda: _enqueue(delivery.pk), robust=True)
        PosConnection.objects.filter(pk=connection.pk).update(last_delivery_at=delivery.received_at)
    return JsonResponse({"received": True, "delivery": delivery.pk})


def _keep_rejected(connection: PosConnection) -> bool:
    """Whether this hour's rejected requests to the connection are still few enough to store: a flood
    of forged posts must not fill the database. Counted atomically; with the cache down they are kept
    (the audit trail matters more than the bound for as long as that lasts)."""
    limit = settings.POS_REJECTED_DELIVERIES_KEPT_PER_HOUR
    hour = int(time.time()) // 3600
    # The creation time too: a database rebuilt from scratch (a test run) reuses ids, the cache may not.
    key = f"pos-rejected:{connection.pk}:{connection.created_at.timestamp():.6f}:{hour}"
    try:
        count = count_in_window(key, timeout=2 * 3600)
    except Exception:  # noqa: BLE001 - any cache failure: keep it
        return True
    if count == limit + 1:
        logger.warning("POS connection %s: over %s rejected webhooks this hour; further ones are not kept",
                       connection.pk, limit)
    return count <= limit


def _save_as_duplicate(delivery: WebhookDelivery) -> None:
    """The vendor sent this event before (a retry), or a twin of this request won the insert an instant
    ago: the vendor still gets its 2xx (or it would retry), the request is kept, nothing is processed.
    The unique index made this insert wait for the winner's commit, so the winner is visible here."""
    owner = WebhookDelivery.objects.get(
        connection=delivery.connection, vendor_event_id=delivery.vendor_event_id, duplicate_of__isnull=True
    )
    delivery.duplicate_of, delivery.status = owner, WebhookDelivery.Status.PROCESSED
    delivery.outcome, delivery.processed_at = [{"duplicate_of": owner.pk}], timezone.now()
    delivery.save()


def _enqueue(delivery_id: int) -> None:
    from pos_integration.tasks import process_delivery_task

    process_delivery_task.delay(delivery_id)
