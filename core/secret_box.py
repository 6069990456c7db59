"""Encrypting connection secrets at rest (vendor signature keys, API tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key derived from TESSERA_SIGNING_KEY
by HKDF, so a database dump alone does not reveal merchants' vendor secrets. Rotating the signing
key means re-entering connection secrets (noted in the README).
"""
import base64
import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@cache
def _fernet(signing_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tessera connection secrets").derive(
        signing_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(values: dict) -> str:
    return _fernet(settings.SIGNING_KEY).encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def unseal(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet(settings.SIGNING_KEY).decrypt(token.encode()))
    except InvalidToken as error:
        raise ValueError("Connection secrets cannot be decrypted with the current TESSERA_SIGNING_KEY.") from error


def mask(value: str) -> str:
    """What the admin shows of a saved secret: its last four characters at most."""
    value = str(value or "")
    if len(value) <= 8:
        return "••••"
    return f"••••{value[-4:]}"
