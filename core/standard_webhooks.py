"""Signing and verifying webhooks by the Standard Webhooks specification (standardwebhooks.com).

Tessera uses it wherever it defines a webhook itself: the generic POS intake verifies with it, the
CRM `webhook` connector signs with it. Any consumer can check our signatures with the spec's own
libraries, and the spec's published test vector is in our tests.

The scheme: headers `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`, a
space-separated list of `v1,<base64 HMAC-SHA256>` entries over `{id}.{timestamp}.{body}`, keyed by
the base64 part of a `whsec_...` secret. Several entries let a sender sign with the old and the new
secret while rotating; a verifier accepts if any `v1` entry matches and skips other versions (`v1a`
is the asymmetric variant, not ours). The timestamp bounds replays to five minutes either way.
"""
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets as random_source
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker of every secret, not a secret
# The spec's bounds for a symmetric key: at least 192 bits, at most 512.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
TOLERANCE = dt.timedelta(minutes=5)
SIGNATURE_VERSION = "v1"

ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"
_TIMESTAMP = re.compile(r"^\d{1,10}$")  # up to the year 2286: no overflow converting it


class SignatureInvalid(Exception):
    """The webhook is not authentic or not fresh. `reason` says why, for the audit log (never the key)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a `whsec_<base64>` secret. Raises ValueError saying what is wrong with it."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"The secret must start with {SECRET_PREFIX!r}.")
    encoded = secret[len(SECRET_PREFIX):].strip()
    # Some senders drop the base64 padding; the key is the same either way.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"The part after {SECRET_PREFIX!r} is not valid base64.") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"The key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes; this one has {len(key)}.")
    return key


def generate_secret(length: int = 32) -> str:
    """A fresh random secret to give to the other side."""
    return SECRET_PREFIX + base64.b64encode(random_source.token_bytes(length)).decode()


def _unix_seconds(timestamp: int | dt.datetime) -> int:
    if isinstance(timestamp, dt.datetime):
        if timestamp.tzinfo is None:
            raise ValueError("A naive datetime is ambiguous; pass an aware one or unix seconds.")
        return int(timestamp.timestamp())
    return int(timestamp)


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def _check_id(msg_id: str) -> None:
    # The id is the first field of the signed text: a "." in it could shift where the timestamp
    # starts, which the spec asks implementations to rule out.
    if not isinstance(msg_id, str) or not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        raise ValueError("A webhook id must be non-empty, without '.' or spaces.")


def _digest(key: bytes, msg_id: str, seconds: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{seconds}.".encode() + body, hashlib.sha256).digest()


def signature(secret: str, msg_id: str, timestamp: int | dt.datetime, body: bytes | str) -> str:
    """One `v1,<base64>` signature entry."""
    _check_id(msg_id)
    digest = _digest(decode_secret(secret), msg_id, _unix_seconds(timestamp), _as_bytes(body))
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def sign(secret: str | Sequence[str], msg_id: str, timestamp: int | dt.datetime, body: bytes | str) -> dict:
    """The three headers for an outgoing webhook. Pass several secrets while rotating: one entry each."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("At least one secret is needed to sign.")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(_unix_seconds(timestamp)),
        SIGNATURE_HEADER: " ".join(signature(key, msg_id, timestamp, body) for key in keys),
    }


def _v1_signatures(header: str) -> list[bytes]:
    """The decodable `v1` entries of a signature header; other versions and junk are skipped."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(secret: str, headers: Mapping[str, str], body: bytes | str, *, now: dt.datetime | None = None,
           tolerance: dt.timedelta = TOLERANCE) -> str:
    """Check a received webhook over its raw body; return its `webhook-id`. Raises SignatureInvalid.

    `headers` may use any letter case. `now` is when the request arrived (defaults to the clock).
    """
    lower = {str(name).lower(): value for name, value in headers.items()}
    msg_id, stamp, signatures = (lower.get(name) for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    missing = [name for name, value in zip((ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER),
                                           (msg_id, stamp, signatures), strict=True) if not value]
    if missing:
        raise SignatureInvalid(f"Missing header: {', '.join(missing)}.")
    try:
        _check_id(msg_id)
    except ValueError as error:
        raise SignatureInvalid(str(error)) from None
    if not _TIMESTAMP.match(stamp.strip()):
        raise SignatureInvalid("webhook-timestamp is not unix seconds.")
    seconds = int(stamp.strip())
    now = now or dt.datetime.now(dt.UTC)
    sent_at = dt.datetime.fromtimestamp(seconds, dt.UTC)
    if sent_at < now - tolerance:
        raise SignatureInvalid("webhook-timestamp is too old (replay window is five minutes).")
    if sent_at > now + tolerance:
        raise SignatureInvalid("webhook-timestamp is too far in the future.")
    expected = _digest(decode_secret(secret), msg_id, seconds, _as_bytes(body))
    # Compare against every candidate, constant time each, so timing never tells which one matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in _v1_signatures(signatures)]
    if not any(matches):
        raise SignatureInvalid("No v1 signature matches.")
    return msg_id
