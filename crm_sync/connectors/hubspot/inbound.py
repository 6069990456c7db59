"""HubSpot webhooks: the v3 signature, and email consent read from contact property changes.

Only `X-HubSpot-Signature-v3` is accepted: v1 and v2 sign no timestamp and can be replayed forever
(vendors-and-reliability.md 1.5). v3 is base64(HMAC-SHA256(app client secret, method + URI + body +
timestamp)), the timestamp in epoch milliseconds and at most five minutes old. A seconds timestamp
reads as 1970 and fails the age check rather than passing as "old but valid".
"""
import base64
import datetime as dt
import hashlib
import hmac
import json

from crm_sync.base import InboundRejected
from crm_sync.types import InboundRequest

MAX_AGE = dt.timedelta(minutes=5)
SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
LEGACY_HEADERS = ("x-hubspot-signature", "x-hubspot-signature-version")
CONTACT_TYPE_ID = "0-1"  # objectTypeId of contacts in generic `object.*` webhooks
# HubSpot decodes these escapes in the URI before signing; we do the same before comparing.
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
            "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signed_uri(url: str) -> str:
    for escaped, plain in _DECODED.items():
        url = url.replace(escaped, plain).replace(escaped.lower(), plain)
    return url


def v3_signature(client_secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    source = method.upper().encode() + signed_uri(url).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), source, hashlib.sha256).digest()).decode()


def verify_v3(request: InboundRequest, client_secret: str) -> None:
    """Raise InboundRejected unless `request` carries a fresh, valid v3 signature."""
    if not client_secret:
        raise InboundRejected("No client secret is configured for HubSpot webhooks.")
    signature, timestamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER) or ""
    if not signature:
        legacy = any(request.header(name) for name in LEGACY_HEADERS)
        raise InboundRejected("Only v3 signatures are accepted." if legacy else "No X-HubSpot-Signature-v3.")
    if not timestamp.isdigit():
        raise InboundRejected("X-HubSpot-Request-Timestamp is not epoch milliseconds.")
    try:
        sent_at = dt.datetime.fromtimestamp(int(timestamp) / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        sent_at = None
    if sent_at is None or abs(request.received_at - sent_at) > MAX_AGE:
        raise InboundRejected("The request timestamp is more than five minutes away.")
    expected = v3_signature(client_secret, request.method, request.url, request.body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise InboundRejected("The v3 signature does not match.")


def consent_signals(body: bytes, *, opt_in_property: str, opt_out_property: str) -> list[tuple[str, bool]]:
    """(contact id, opted in) from contact property changes, the latest per contact in this request.
    `opt_in_property` true or false sets the consent; `opt_out_property` (hs_email_optout) true opts out."""
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    latest: dict[str, tuple[int, bool]] = {}
    for event in events if isinstance(events, list) else []:
        signal = _signal(event, opt_in_property, opt_out_property)
        if signal is None:
            continue
        object_id, opted_in, occurred_at = signal
        if object_id not in latest or occurred_at >= latest[object_id][0]:
            latest[object_id] = (occurred_at, opted_in)
    return [(object_id, opted_in) for object_id, (_, opted_in) in latest.items()]


def _signal(event, opt_in_property: str, opt_out_property: str) -> tuple[str, bool, int] | None:
    if not isinstance(event, dict):
        return None
    kind = event.get("subscriptionType")
    is_contact = kind == "contact.propertyChange" or (
        kind == "object.propertyChange" and str(event.get("objectTypeId")) == CONTACT_TYPE_ID
    )
    name, value = event.get("propertyName"), str(event.get("propertyValue") or "").strip().lower()
    if not is_contact or not event.get("objectId") or value not in ("true", "false") or not name:
        return None
    occurred_at = event.get("occurredAt") if isinstance(event.get("occurredAt"), int) else 0
    if name == opt_in_property:
        return str(event["objectId"]), value == "true", occurred_at
    if name == opt_out_property and value == "true":
        return str(event["objectId"]), False, occurred_at
    return None  # consent is opt-in only: the end of an opt-out is not an opt-in
