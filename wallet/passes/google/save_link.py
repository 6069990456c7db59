"""The "Save to Google Wallet" link: https://pay.google.com/gp/v/save/<JWT signed RS256>."""
from __future__ import annotations

import time

from django.conf import settings

from wallet.passes.google.credentials import ServiceAccount, load_service_account
from wallet.passes.google.objects import class_id, loyalty_object, object_id

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"
MAX_WEB_JWT_LENGTH = 1800  # the reference's safe length for a web link


def save_claims(card, *, embed_object: bool = False, service_account: ServiceAccount, now: int | None = None) -> dict:
    if embed_object:
        payload_object = loyalty_object(card)
    else:
        payload_object = {"id": object_id(card), "classId": class_id(card.program)}
    return {
        "iss": service_account.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time()) if now is None else now,
        "origins": list(settings.GOOGLE_WALLET.get("ORIGINS") or []),
        "payload": {"loyaltyObjects": [payload_object]},
    }


def save_url(
    card, *, embed_object: bool = False, service_account: ServiceAccount | None = None, now: int | None = None
) -> str:
    """The signed save link for `card`.

    By default the JWT is "skinny": it names the object by `{id, classId}` only, and the object must
    already have been inserted over REST (`GoogleWalletClient.upsert_object`). Two reasons, both from
    the reference's pitfalls: the object carries the card's rotating-barcode TOTP secret
    (`totpDetails.parameters[].key`), and a JWT is only signed, not encrypted, so anyone who sees the
    link could read the secret and generate valid codes, which defeats the rotating barcode; and a
    full object makes the JWT longer than the ~1,800 characters a web link can safely carry.

    `embed_object=True` puts the full object in the JWT (Google inserts it on save). Use it only
    where the link never leaves a trusted channel.
    Links in emails should point to our own endpoint that mints the JWT on click (lazy JWT).
    """
    account = service_account or load_service_account()
    claims = save_claims(card, embed_object=embed_object, service_account=account, now=now)
    return SAVE_URL_PREFIX + account.sign(claims)
