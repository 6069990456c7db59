"""Apple's PassKit web service (webServiceURL + /v1/...), answering with Apple's status codes.

Authenticated routes take `Authorization: ApplePass <authenticationToken>`; the token is derived
from the serial (see pkpass.authentication_token) and compared in constant time. A wrong or missing
token, and an unknown serial, are both 401 so the service does not reveal which cards exist. An
unknown pass type identifier is 404. Update tags are pass_updated_at in integer microseconds.
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import math
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from wallet.models import AppleDevice, AppleRegistration, Card

from .pkpass import CONTENT_TYPE, authentication_token, build_pkpass

logger = logging.getLogger(__name__)

PUSH_TOKEN_PATTERN = re.compile(r"^[0-9a-fA-F]{16,200}$")
MAX_LOG_ENTRIES = 100
MAX_LOG_CHARS = 1000
# A card's pass_updated_at is set inside its (possibly still open) ledger transaction, so a row can
# commit with a time slightly before a tag we already handed out. lastUpdated therefore never goes
# past now - this window: such a late commit is still "after the tag" next time (a repeat costs one 304).
TAG_SAFETY_WINDOW = dt.timedelta(seconds=5)


def to_tag(moment: dt.datetime) -> str:
    """An update tag: microseconds since the epoch, as a string (Apple needs lastUpdated as a string)."""
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def from_tag(tag: str) -> dt.datetime | None:
    if not tag.isdigit() or len(tag) > 20:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(tag))


def _known_pass_type(pass_type_identifier: str) -> bool:
    return hmac.compare_digest(pass_type_identifier, settings.APPLE_WALLET["PASS_TYPE_IDENTIFIER"])


def _authorised_card(request, serial_number: str) -> Card | None:
    """The card whose token the request presents, or None (wrong, missing token or unknown serial)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme != "ApplePass" or not token:
        return None
    if not hmac.compare_digest(token.strip().encode(), authentication_token(serial_number).encode()):
        return None
    return Card.objects.select_related("merchant", "program", "tier", "wallet__customer").filter(
        number=serial_number
    ).first()


def _unauthorised() -> HttpResponse:
    return HttpResponse(status=401)


@csrf_exempt
@require_http_methods(["POST", "DELETE"])
def registration(request, device_library_identifier: str, pass_type_identifier: str, serial_number: str):
    if not _known_pass_type(pass_type_identifier):
        return HttpResponse(status=404)
    card = _authorised_card(request, serial_number)
    if card is None:
        return _unauthorised()
    if request.method == "DELETE":
        return _unregister(device_library_identifier, pass_type_identifier, card)
    try:
        push_token = json.loads(request.body or b"{}").get("pushToken")
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    if not isinstance(push_token, str) or not PUSH_TOKEN_PATTERN.match(push_token):
        return HttpResponse(status=400)
    return _register(device_library_identifier, pass_type_identifier, card, push_token)


def _register(device_library_identifier, pass_type_identifier, card, push_token) -> HttpResponse:
    try:
        with transaction.atomic():
            device, created = AppleDevice.objects.get_or_create(
                device_library_identifier=device_library_identifier, defaults={"push_token": push_token}
            )
            if not created and device.push_token != push_token:
                device.push_token = push_token
                device.save(update_fields=["push_token", "updated_at"])
            _, new = AppleRegistration.objects.get_or_create(
                device=device, card=card, pass_type_identifier=pass_type_identifier
            )
    except IntegrityError:  # a concurrent identical registration won the race: it is registered
        return HttpResponse(status=200)
    return HttpResponse(status=201 if new else 200)


def _unregister(device_library_identifier, pass_type_identifier, card) -> HttpResponse:
    with transaction.atomic():
        AppleRegistration.objects.filter(
            device__device_library_identifier=device_library_identifier,
            card=card,
            pass_type_identifier=pass_type_identifier,
        ).delete()
        AppleDevice.objects.filter(
            device_library_identifier=device_library_identifier, registrations__isnull=True
        ).delete()
    return HttpResponse(status=200)


@require_http_methods(["GET"])
def updated_serials(request, device_library_identifier: str, pass_type_identifier: str):
    """Serials registered on the device whose pass changed after `passesUpdatedSince` (all without it)."""
    if not _known_pass_type(pass_type_identifier):
        return HttpResponse(status=404)
    cards = Card.objects.filter(
        apple_registrations__device__device_library_identifier=device_library_identifier,
        apple_registrations__pass_type_identifier=pass_type_identifier,
    )
    since_tag = request.GET.get("passesUpdatedSince")
    if since_tag:
        since = from_tag(since_tag)
        if since is None:
            return HttpResponse(status=400)
        cards = cards.filter(pass_updated_at__gt=since)
    serials = sorted(set(cards.values_list("number", flat=True)))
    if not serials:
        return HttpResponse(status=204)
    last_updated = min(cards.aggregate(latest=Max("pass_updated_at"))["latest"], timezone.now() - TAG_SAFETY_WINDOW)
    return JsonResponse({"serialNumbers": serials, "lastUpdated": to_tag(last_updated)})


def last_modified_seconds(updated_at: dt.datetime, now: dt.datetime | None = None) -> int:
    """Last-Modified (whole seconds) for a pass changed at `updated_at`.

    HTTP dates drop the microseconds. If the second of the change has not ended yet, a later change
    in the same second would look "not modified", so we claim one second earlier: the device then
    downloads once more instead of missing an update.
    """
    now = now or timezone.now()
    seconds = math.floor(updated_at.timestamp())
    return seconds - 1 if math.floor(now.timestamp()) <= seconds else seconds


@require_http_methods(["GET"])
def latest_pass(request, pass_type_identifier: str, serial_number: str):
    if not _known_pass_type(pass_type_identifier):
        return HttpResponse(status=404)
    card = _authorised_card(request, serial_number)
    if card is None:
        return _unauthorised()
    changed = math.floor(card.pass_updated_at.timestamp())
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if since is not None and since >= changed:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(build_pkpass(card), content_type=CONTENT_TYPE)
    response["Last-Modified"] = http_date(last_modified_seconds(card.pass_updated_at))
    response["Cache-Control"] = "no-cache"
    return response


@csrf_exempt
@require_POST
def device_log(request):
    try:
        logs = json.loads(request.body or b"{}").get("logs", [])
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    if not isinstance(logs, list):
        return HttpResponse(status=400)
    for entry in logs[:MAX_LOG_ENTRIES]:
        logger.info("Apple Wallet device log: %s", str(entry)[:MAX_LOG_CHARS])
    if len(logs) > MAX_LOG_ENTRIES:
        logger.info("Apple Wallet device log: %d more entries dropped", len(logs) - MAX_LOG_ENTRIES)
    return HttpResponse(status=200)
