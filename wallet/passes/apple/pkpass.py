"""The Apple Wallet store card of a loyalty card: pass.json, images, manifest.json, signature, zipped.

`build_pkpass(card)` returns the bytes served as application/vnd.apple.pkpass. The signature is a
detached PKCS#7 (DER) over manifest.json by the Pass Type ID certificate's key, carrying the WWDR
intermediate and the signing-time attribute. Digest: SHA-256 (cryptography does not sign with SHA-1;
current Wallet accepts SHA-256 signatures).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import math
import zipfile
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from merchants.models import Store
from wallet.hooks import pass_offer_line
from wallet.models import Card

from .certificates import PassCredentials, load_pass_credentials

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.apple.pkpass"
MAX_LOCATIONS = 10
ICON_POINTS = 29
LOGO_POINTS = 50  # square logo, inside Apple's 160 x 50 pt allotment


def authentication_token(serial_number: str) -> str:
    """The pass's web-service token: HMAC-SHA256 of the serial under SIGNING_KEY, base64url (43 chars).

    Derived, not stored, so it never changes across pass updates (Apple forbids changing it).
    """
    digest = hmac.new(
        settings.SIGNING_KEY.encode(), f"apple-pass-auth:{serial_number}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def web_service_url() -> str:
    return f"{settings.TESSERA_PUBLIC_URL}/passkit/"


def _hex_to_rgb(value: str) -> tuple[int, int, int]:
    value = (value or "").lstrip("#")
    if len(value) != 6:
        value = "1F2937"
    try:
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except ValueError:
        return 0x1F, 0x29, 0x37


def _css(rgb: tuple[int, int, int]) -> str:
    return f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"


def pass_colors(brand_color: str) -> dict[str, str]:
    """Background = brand colour; foreground black or white, whichever reads better; label a softer tone."""
    background = _hex_to_rgb(brand_color)
    luminance = 0.2126 * background[0] + 0.7152 * background[1] + 0.0722 * background[2]
    foreground = (0, 0, 0) if luminance > 150 else (255, 255, 255)
    label = tuple(round(0.7 * f + 0.3 * b) for f, b in zip(foreground, background, strict=True))
    return {"foregroundColor": _css(foreground), "backgroundColor": _css(background), "labelColor": _css(label)}


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12742 * math.asin(math.sqrt(min(1.0, a)))


def store_locations(card: Card) -> list[dict]:
    """Up to 10 active stores with coordinates: nearest to the customer's home if known, else the first 10."""
    stores = Store.objects.filter(
        merchant_id=card.merchant_id, is_active=True, latitude__isnull=False, longitude__isnull=False
    ).order_by("pk")
    customer = card.wallet.customer
    if customer.home_latitude is not None and customer.home_longitude is not None:
        home = float(customer.home_latitude), float(customer.home_longitude)
        rows = sorted(
            stores.values_list("pk", "name", "latitude", "longitude"),
            key=lambda row: (_distance_km(*home, float(row[2]), float(row[3])), row[0]),
        )[:MAX_LOCATIONS]
    else:
        rows = list(stores.values_list("pk", "name", "latitude", "longitude")[:MAX_LOCATIONS])
    return [
        {"latitude": float(lat), "longitude": float(lon), "relevantText": f"{name} is nearby"}
        for _pk, name, lat, lon in rows
    ]


def _program_rules(card: Card) -> str:
    program, merchant = card.program, card.merchant
    rate = program.points_per_currency_unit.normalize()
    lines = [f"Earn {rate:f} point(s) per 1 {merchant.currency} spent."]
    if program.points_validity_days:
        lines.append(f"Points expire {program.points_validity_days} days after they are earned.")
    else:
        lines.append("Points never expire.")
    tiers = list(program.tiers.order_by("threshold").values_list("name", "threshold", "multiplier"))
    if tiers:
        lines.append(
            "Tiers: " + "; ".join(f"{name} from {threshold} lifetime points (x{multiplier.normalize():f})"
                                  for name, threshold, multiplier in tiers)
        )
    return "\n".join(lines)


def offer_line(card: Card) -> str | None:
    """The best current offer for the card (TESSERA_PASS_OFFER_HOOK), for an active card. A failing
    hook costs the pass its offer line, never the pass itself."""
    if not card.is_active:
        return None
    try:
        return pass_offer_line(card) or None
    except Exception:
        logger.exception("The pass offer hook failed for card %s; the pass is built without an offer.", card.pk)
        return None


def build_pass_json(card: Card) -> dict:
    merchant, program = card.merchant, card.program
    config = settings.APPLE_WALLET
    serial = card.number
    data = {
        "formatVersion": 1,
        "passTypeIdentifier": config["PASS_TYPE_IDENTIFIER"],
        "serialNumber": serial,
        "teamIdentifier": config["TEAM_IDENTIFIER"],
        "organizationName": merchant.name,
        "description": f"{merchant.name} {program.name} loyalty card",
        "logoText": merchant.name,
        **pass_colors(merchant.brand_color),
        "webServiceURL": web_service_url(),
        "authenticationToken": authentication_token(serial),
        "barcodes": [
            {"format": "PKBarcodeFormatCode128", "message": serial, "messageEncoding": "iso-8859-1", "altText": serial},
            {"format": "PKBarcodeFormatQR", "message": serial, "messageEncoding": "iso-8859-1", "altText": serial},
        ],
        "storeCard": {
            "primaryFields": [
                {"key": "balance", "label": "POINTS", "value": card.balance,
                 "changeMessage": "Your balance is now %@ points"},
            ],
            "secondaryFields": [
                {"key": "tier", "label": "TIER", "value": card.tier.name if card.tier_id else "Member",
                 "changeMessage": "Your tier is now %@"},
            ],
            "auxiliaryFields": [
                {"key": "number", "label": "CARD NUMBER", "value": serial},
            ],
            "backFields": [
                {"key": "message", "label": "Message", "value": card.pass_message, "changeMessage": "%@"},
                {"key": "program", "label": program.name, "value": _program_rules(card)},
                {"key": "card_number", "label": "Card number", "value": serial},
            ],
        },
    }
    offer = offer_line(card)
    if offer:
        data["storeCard"]["backFields"].insert(1, {"key": "offer", "label": "Offer", "value": offer})
    locations = store_locations(card)
    if locations:
        data["locations"] = locations
    if not card.is_active:
        data["voided"] = True
    return data


@lru_cache(maxsize=256)
def _square_png(rgb: tuple[int, int, int], text_rgb: tuple[int, int, int], initial: str, pixels: int) -> bytes:
    image = Image.new("RGB", (pixels, pixels), rgb)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, int(pixels * 0.6)))
    draw.text((pixels / 2, pixels / 2), initial, fill=text_rgb, font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def build_images(card: Card) -> dict[str, bytes]:
    """icon.png and logo.png at @1x/@2x/@3x: the brand colour with the merchant's initial."""
    rgb = _hex_to_rgb(card.merchant.brand_color)
    text_rgb = _hex_to_rgb("#000000" if pass_colors(card.merchant.brand_color)["foregroundColor"] == "rgb(0, 0, 0)"
                           else "#FFFFFF")
    initial = (card.merchant.name.strip()[:1] or "T").upper()
    files = {}
    for name, points in (("icon", ICON_POINTS), ("logo", LOGO_POINTS)):
        for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
            files[f"{name}{suffix}.png"] = _square_png(rgb, text_rgb, initial, points * scale)
    return files


def build_manifest(files: dict[str, bytes]) -> bytes:
    """SHA-1 (hex) of every file, as Apple specifies for manifest.json (an integrity list, not a signature)."""
    manifest = {name: hashlib.sha1(content, usedforsecurity=False).hexdigest() for name, content in files.items()}
    return json.dumps(manifest, sort_keys=True, indent=2).encode()


def sign_manifest(manifest: bytes, credentials: PassCredentials) -> bytes:
    """Detached PKCS#7 signature, DER, with the pass certificate, its key and the WWDR intermediate."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(credentials.certificate, credentials.private_key, hashes.SHA256())
        .add_certificate(credentials.wwdr_certificate)
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def build_pkpass(card: Card, *, credentials: PassCredentials | None = None) -> bytes:
    credentials = credentials or load_pass_credentials()
    files = {"pass.json": json.dumps(build_pass_json(card), ensure_ascii=False, indent=2).encode()}
    files.update(build_images(card))
    manifest = build_manifest(files)
    signature = sign_manifest(manifest, credentials)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("manifest.json", manifest)
        archive.writestr("signature", signature)
    return out.getvalue()
