"""Device API keys: `tsk_<prefix>_<secret>`, shown once, stored as an argon2 hash (passlib)."""
import secrets

from passlib.hash import argon2

KEY_PREFIX = "tsk_"


def new_device_key() -> tuple[str, str]:
    """Return (public prefix, full key). The prefix is a lookup handle, not a secret."""
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return argon2.hash(key)


def key_matches(key: str, key_hash: str) -> bool:
    return argon2.verify(key, key_hash)


def prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, _, secret = key[len(KEY_PREFIX):].partition("_")
    return prefix if prefix and secret else None
