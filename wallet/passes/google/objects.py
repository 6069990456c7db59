"""LoyaltyClass and LoyaltyObject JSON for Google Wallet, field names as in the Wallet REST reference.

One class per program (`<issuerId>.<merchant slug>-<program id>`), one object per card
(`<issuerId>.card-<card number>`). The object shows a rotating QR code (RFC 6238 TOTP, computed on the
phone by Google Wallet) so a screenshot goes stale; the TOTP secret is unique per card.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import struct
import time

from django.conf import settings

from wallet.hooks import pass_offer_line

logger = logging.getLogger(__name__)

WALLET_TOTP_CONTEXT = b"tessera/google-wallet/totp/v1:"
TOTP_KEY_BYTES = 20  # 160 bits, the length RFC 4226 recommends for HMAC-SHA1
TOTP_DIGITS = 8
# What the QR encodes: prefix, card number, the step's timestamp in seconds, the 8-digit TOTP value.
# The timestamp lets the scanner check the window the value belongs to (reference 3.2, "Tests").
VALUE_PATTERN = "TGW1:{number}:{{totp_timestamp_seconds}}:{{totp_value_0}}"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_MERCHANT_LOCATIONS = 10


def issuer_id() -> str:
    return str(settings.GOOGLE_WALLET["ISSUER_ID"])


def class_id(program) -> str:
    return f"{issuer_id()}.{program.merchant.slug}-{program.pk}"


def object_id(card) -> str:
    return f"{issuer_id()}.card-{card.number}"


def totp_secret(card_number: str) -> bytes:
    """The card's TOTP secret: HMAC-SHA256(SIGNING_KEY, context + number), first 20 bytes.

    Deterministic, so nothing has to be stored; rotating SIGNING_KEY changes every secret and needs every
    Google object re-patched (upsert_object) before the scanner switches keys.
    """
    mac = hmac.new(settings.SIGNING_KEY.encode(), WALLET_TOTP_CONTEXT + card_number.encode(), hashlib.sha256)
    return mac.digest()[:TOTP_KEY_BYTES]


def totp_key_base16(card_number: str) -> str:
    """The secret as Google wants it in totpDetails.parameters[].key: Base16 (hex)."""
    return totp_secret(card_number).hex()


def totp_value(secret: bytes, timestamp: float, *, period_seconds: int = 30, digits: int = TOTP_DIGITS) -> str:
    """RFC 6238 TOTP with HMAC-SHA1 (Google's TOTP_SHA1), for the server-side check of a scanned value."""
    counter = int(timestamp // period_seconds)
    digest = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def current_totp(card, at: float | None = None) -> str:
    """What the card's Google pass shows now (or at `at`, seconds since the epoch)."""
    return totp_value(
        totp_secret(card.number), time.time() if at is None else at, period_seconds=card.program.token_period_seconds
    )


def logo_url(merchant) -> str:
    return f"{settings.TESSERA_PUBLIC_URL}/passes/google/merchants/{merchant.slug}/logo.png"


def loyalty_class(program) -> dict:
    """The LoyaltyClass for `program`, ready for insert (reviewStatus UNDER_REVIEW, auto-approved).

    Store positions go in `merchantLocations` (at most 10): the reference marks `locations` deprecated
    and unable to trigger geofenced notifications.
    """
    merchant = program.merchant
    stores = list(merchant.stores.filter(is_active=True).order_by("pk"))
    body = {
        "id": class_id(program),
        "issuerName": merchant.name,
        "programName": program.name,
        "programLogo": {
            "sourceUri": {"uri": logo_url(merchant)},
            "contentDescription": {"defaultValue": {"language": "en", "value": f"{merchant.name} logo"}},
        },
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": merchant.brand_color.lower(),
        "accountIdLabel": "Card number",
        "accountNameLabel": "Member",
    }
    locations = [
        {"latitude": float(s.latitude), "longitude": float(s.longitude)}
        for s in stores
        if s.latitude is not None and s.longitude is not None
    ][:MAX_MERCHANT_LOCATIONS]
    if locations:
        body["merchantLocations"] = locations
    country = next((s.country.upper() for s in stores if s.country), "")
    if country:
        body["countryCode"] = country
    return body


def _points_balance(points: int) -> dict:
    # LoyaltyPointsBalance.int is int32; a larger balance is shown as a string.
    return {"int": points} if INT32_MIN <= points <= INT32_MAX else {"string": str(points)}


def account_name(card) -> str:
    first_name = (card.wallet.customer.user.first_name or "").strip()
    return first_name or "Member"


def rotating_barcode(card) -> dict:
    return {
        "type": "QR_CODE",
        "valuePattern": VALUE_PATTERN.format(number=card.number),
        "alternateText": card.number,
        "totpDetails": {
            "periodMillis": str(card.program.token_period_seconds * 1000),
            "algorithm": "TOTP_SHA1",
            "parameters": [{"key": totp_key_base16(card.number), "valueLength": TOTP_DIGITS}],
        },
    }


def offer_line(card) -> str | None:
    """The best current offer for an active card (TESSERA_PASS_OFFER_HOOK). A failing hook costs the
    object its offer module, never the update itself."""
    if not card.is_active:
        return None
    try:
        return pass_offer_line(card) or None
    except Exception:
        logger.exception("The pass offer hook failed for card %s; the object is sent without an offer.", card.pk)
        return None


def card_fields(card) -> dict:
    """What changes with the card (balance, tier, state, message): the body of a balance PATCH.

    `textModulesData` is always sent (empty list when there is neither message nor offer) so a PATCH
    clears an old message or offer. Without a tier, `secondaryLoyaltyPoints` is left out.
    """
    modules = [{"header": "Message", "body": card.pass_message, "id": "pass_message"}] if card.pass_message else []
    offer = offer_line(card)
    if offer:
        modules.append({"header": "Offer", "body": offer, "id": "offer"})
    fields = {
        "state": "ACTIVE" if card.is_active else "INACTIVE",
        "loyaltyPoints": {"label": "Points", "balance": _points_balance(card.balance)},
        "textModulesData": modules,
    }
    if card.tier_id is not None:
        fields["secondaryLoyaltyPoints"] = {"label": "Tier", "balance": {"string": card.tier.name}}
    return fields


def loyalty_object(card, *, rotating: bool = True) -> dict:
    """The LoyaltyObject for `card`. `hasUsers` is set by Google, never by us.

    With `rotating` (the default) only a `rotatingBarcode` is set: a static fallback barcode would
    "negate most of the security benefits" (reference). `rotating=False` gives a static QR of the number.
    """
    body = {
        "id": object_id(card),
        "classId": class_id(card.program),
        "accountId": card.number,
        "accountName": account_name(card),
        **card_fields(card),
    }
    if not body["textModulesData"]:
        del body["textModulesData"]
    if rotating:
        body["rotatingBarcode"] = rotating_barcode(card)
    else:
        body["barcode"] = {"type": "QR_CODE", "value": card.number, "alternateText": card.number}
    return body
