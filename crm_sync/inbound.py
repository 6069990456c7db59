"""`/hooks/crm/<connection id>/`: consent changes coming back from a merchant's CRM.

A body over 1 MB is refused (413) before any signature work; then verified over the raw bytes
(401, nothing changed, otherwise); then each change is applied
through the consent service for a customer who holds a card of this merchant, never anyone else.
"""
import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import TesseraError, error_body
from core.request_body import capped_body
from crm_sync.base import CrmError, InboundRejected
from crm_sync.connections import connector_for
from crm_sync.models import CrmConnection
from crm_sync.types import ConsentChange, InboundRequest
from wallet.models import Customer
from wallet.services.accounts import normalize_email, normalize_phone
from wallet.services.preferences import CHANNELS, set_channel_consent

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024


@csrf_exempt
@require_POST
def crm_inbound(request, connection_id):
    connection = CrmConnection.objects.filter(pk=connection_id).select_related("merchant").first()
    connector = connector_for(connection) if connection else None
    if connector is None or not connector.supports_inbound:
        return JsonResponse(error_body("not_found", "No CRM connection takes webhooks here."), status=404)
    body = capped_body(request, MAX_BODY_BYTES)
    if body is None:
        return JsonResponse(error_body("payload_too_large", "The body is too large."), status=413)
    incoming = InboundRequest(body=body, headers={k.lower(): v for k, v in request.headers.items()},
                              method=request.method, url=_called_url(connector.inbound_url, request),
                              received_at=timezone.now())
    try:
        connector.verify_inbound(incoming)
    except InboundRejected as rejected:
        logger.warning("CRM webhook rejected for connection %s: %s", connection.pk, rejected.reason)
        return JsonResponse(error_body("webhook_rejected", "The webhook could not be verified."), status=401)
    try:
        changes = connector.parse_inbound(incoming)
    except RecursionError:  # JSON nested too deeply for Python's parser: bad input, whatever the connector
        return JsonResponse(error_body("malformed_request", "The body nests too deeply to read."), status=400)
    except CrmError as error:  # the CRM's own API failed while reading the webhook: ask it to resend
        logger.warning("CRM webhook for connection %s not read: %s", connection.pk, error)
        return JsonResponse(error_body("crm_unavailable", "Could not read this webhook now; retry."), status=503)
    applied = sum(1 for change in changes if apply_consent(connection, change))
    return JsonResponse({"received": len(changes), "applied": applied})


def _called_url(configured: str, request) -> str:
    """The URL the CRM called, for signatures that cover it: scheme, host and path as configured
    (a proxy may rewrite ours), and the query string as received, unless the configuration has one."""
    query = request.META.get("QUERY_STRING", "")
    return f"{configured}?{query}" if query and "?" not in configured else configured


def find_customer(connection: CrmConnection, change: ConsentChange) -> Customer | None:
    """A customer with a card of this connection's merchant, by our id, email or phone."""
    members = Customer.objects.filter(wallet__cards__merchant_id=connection.merchant_id, erased_at__isnull=True)
    if change.customer_id:
        return members.filter(pk=change.customer_id).first()
    try:
        if change.email:
            return members.filter(user__email__iexact=normalize_email(change.email)).first()
        if change.phone:
            return members.filter(user__phone=normalize_phone(change.phone)).first()
    except DjangoValidationError:
        return None
    return None


def apply_consent(connection: CrmConnection, change: ConsentChange) -> bool:
    if change.channel not in CHANNELS:
        return False
    customer = find_customer(connection, change)
    if customer is None:
        return False
    try:
        set_channel_consent(customer, connection.merchant, {change.channel: change.opted_in})
    except TesseraError:
        return False
    return True
