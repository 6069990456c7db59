"""`/hooks/stripe/`: Stripe's billing events for Tessera's own account (not a merchant's POS Stripe).

In a fixed order: POST only; refuse when no signing secret is configured (503); cap the body before
any signature work (413), since anyone can post here; verify the `Stripe-Signature` header over the
raw bytes with the SDK (HMAC-SHA256, 300 s tolerance, and no timestamps from the future either), and
on any doubt answer 400 and write nothing; then apply the event in the request. Applying is a few
row writes with no outbound call, so it needs no queue; if it fails the transaction rolls back,
Stripe gets a 5xx and delivers again. A duplicate is answered 200, as Stripe expects.
"""
import logging
import time

import stripe
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.errors import error_body
from core.request_body import capped_body
from merchants.billing.services import DUPLICATE, MalformedEvent, apply_stripe_event

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # Stripe's events are a few KB; a large subscription's is well under this
# Stripe's own libraries' default: room for clock drift, too short to replay a captured request later.
SIGNATURE_TOLERANCE_SECONDS = 300


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@csrf_exempt
def stripe_billing_webhook(request):
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Stripe posts its events here.")
        response["Allow"] = "POST"
        return response
    secret = settings.STRIPE_BILLING["WEBHOOK_SECRET"]
    if not secret:
        return _error(503, "billing_not_configured", "Stripe billing webhooks are not configured here.")
    body = capped_body(request, MAX_BODY_BYTES)
    if body is None:
        return _error(413, "payload_too_large", "The body is too large.")
    header = request.headers.get("Stripe-Signature", "")
    if not header:
        return _error(400, "signature_missing", "The Stripe-Signature header is missing.")
    try:
        event = stripe.Webhook.construct_event(body, header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as error:
        logger.warning("Stripe billing webhook refused: %s", error.user_message)
        return _error(400, "signature_invalid", "The Stripe signature could not be verified.")
    except (ValueError, UnicodeDecodeError, RecursionError):  # signed, but not JSON we read (or nested too deep)
        return _error(400, "malformed_event", "The body is not a Stripe snapshot event.")
    # The SDK only bounds the past; a timestamp far in the future is as suspect as a stale one.
    if _signed_at(header) > time.time() + SIGNATURE_TOLERANCE_SECONDS:
        return _error(400, "signature_invalid", "The Stripe signature could not be verified.")
    try:
        outcome = apply_stripe_event(event.to_dict())
    except MalformedEvent as error:
        logger.warning("Stripe billing event not applied: %s", error)
        return _error(400, "malformed_event", "The body is not a Stripe snapshot event.")
    return JsonResponse({"received": True, "duplicate": outcome == DUPLICATE})


def _signed_at(header: str) -> int:
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t":  # the SDK has just read the same field and accepted it
            return int(value)
    return 0
