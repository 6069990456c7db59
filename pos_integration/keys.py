"""Device API keys: `tsk_<prefix>_<secret>`, shown once, stored as an argon2 hash (passlib).

Every POS request carries the key, so a verified key is remembered in this process as a SHA-256
digest tied to the stored hash: the next request with the same key skips the argon2 check. The
device row is still read on every request, so a revoked or rotated key (its hash changed) is
refused at once. The memo holds digests only, never keys.
"""
import hashlib
import hmac
import secrets
from collections import OrderedDict
from threading import Lock

from core.hashing import RANDOM_KEYS

KEY_PREFIX = "tsk_"
_MEMO_SIZE = 1024
_memo: OrderedDict[str, str] = OrderedDict()  # stored hash -> sha256 of the key that matched it
_memo_lock = Lock()


def new_device_key() -> tuple[str, str]:
    """Return (public prefix, full key). The prefix is a lookup handle, not a secret."""
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return RANDOM_KEYS.hash(key)


def key_matches(key: str, key_hash: str) -> bool:
    digest = hashlib.sha256(key.encode()).hexdigest()
    with _memo_lock:
        known = _memo.get(key_hash)
    if known is not None and hmac.compare_digest(known, digest):
        return True
    if not RANDOM_KEYS.verify(key, key_hash):
        return False
    with _memo_lock:
        _memo[key_hash] = digest
        _memo.move_to_end(key_hash)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return True


def prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, _, secret = key[len(KEY_PREFIX):].partition("_")
    return prefix if prefix and secret else None
