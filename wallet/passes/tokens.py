"""Rotating, signed pass tokens: what the QR on a customer's card shows.

Binary layout (big-endian), then Ed25519-signed by the merchant's active key:

    version (1 byte, 0x01) | key id (4 bytes) | card id (unsigned LEB128 varint, 1-9 bytes)
    | time step (4 bytes: unix time // program.token_period_seconds) | signature (64 bytes)

Encoding: base64url without padding. A token is 73 bytes plus the card id's varint: 99 characters for
card ids below 2**7, 100 below 2**14, 102 below 2**21 (measured with `issue_token`), at most 110 for
any 63-bit id. Up to 106 characters (card ids below 2**42) fits a version-6 QR at error correction M;
larger ids need version 7. Base32 in the QR's alphanumeric mode would be 20% longer (119-122
characters) yet fit version 5; it would need a new token version, and nobody types a 100-character
token by hand (the static card number is the typeable identifier). Every token starts with "AQ" (the
version byte), which tells a scanner it is a pass token and not a card number or a coupon code.

The time step makes a screenshot go stale: a token is accepted only within `token_drift_steps`
periods either side of now. Within its window a token can be replayed; single use is the business
of whoever consumes it (see vendors-and-reliability.md 3.4). The signature lets a POS device check a
token offline with the merchant's published public keys (`verify_token_offline`); only the server
(`verify_token`) also knows whether the key was revoked and whether the card is still open.
"""
import binascii
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature

from core.joined_select import JoinedSelect
from merchants import rules_cache
from wallet.models import Card
from wallet.models.passes import PassSigningKey
from wallet.passes import keys

_CARD_WITH_PROGRAM = JoinedSelect(Card, ("program", "merchant"), where="t0.id = %s")

VERSION = 1
_KEY_ID_LEN = keys.KEY_ID_BYTES
_SIG_LEN = 64
_MAX_CARD_ID = 2**63 - 1
MAX_TOKEN_LENGTH = 120

MALFORMED = "malformed"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
REVOKED_KEY = "revoked_key"
CARD_CLOSED = "card_closed"
UNKNOWN_CARD = "unknown_card"
WRONG_MERCHANT = "wrong_merchant"


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of checking a token: `card` when it is valid, else `reason` (one of the constants)."""

    card: Card | None = None
    reason: str | None = None
    key_id: str | None = None
    step: int | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class OfflineCheck:
    card_id: int | None = None
    reason: str | None = None
    key_id: str | None = None
    step: int | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class _Parsed:
    key_id: str
    card_id: int
    step: int
    signed: bytes
    signature: bytes


def _unix(now) -> float:
    if now is None:
        return datetime.now(UTC).timestamp()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def time_step(now, period_seconds: int) -> int:
    return int(_unix(now) // period_seconds)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(offset, min(len(data), offset + 9)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and index != offset:  # non-canonical (trailing zero group)
                raise ValueError("non-canonical varint")
            return value, index + 1
        shift += 7
    raise ValueError("bad varint")


def _payload(key_id: str, card_id: int, step: int) -> bytes:
    return bytes([VERSION]) + bytes.fromhex(key_id) + _varint(card_id) + struct.pack(">I", step)


def _parse(token) -> _Parsed | None:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or "=" in token:
        return None
    try:
        raw = keys.b64url_decode(token)
    except (binascii.Error, ValueError):
        return None
    if keys.b64url(raw) != token:  # exactly one spelling per token (no stray padding bits)
        return None
    if len(raw) < 1 + _KEY_ID_LEN + 1 + 4 + _SIG_LEN or raw[0] != VERSION:
        return None
    signed, signature = raw[:-_SIG_LEN], raw[-_SIG_LEN:]
    try:
        card_id, offset = _read_varint(signed, 1 + _KEY_ID_LEN)
    except ValueError:
        return None
    if len(signed) != offset + 4 or not 0 < card_id <= _MAX_CARD_ID:
        return None
    (step,) = struct.unpack(">I", signed[offset:])
    return _Parsed(signed[1 : 1 + _KEY_ID_LEN].hex(), card_id, step, signed, signature)


def _signature_ok(raw_public_key: bytes, parsed: _Parsed) -> bool:
    try:
        keys.public_key_object(raw_public_key).verify(parsed.signature, parsed.signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def _in_window(step: int, now, period_seconds: int, drift_steps: int) -> bool:
    return abs(time_step(now, period_seconds) - step) <= drift_steps


def issue_token(card: Card, now=None) -> str:
    """A token for `card` in the current time step, signed by its merchant's active key."""
    key = keys.active_key(card.merchant)
    step = time_step(now, card.program.token_period_seconds)
    signed = _payload(key.key_id, card.pk, step)
    return keys.b64url(signed + keys.private_key_of(key).sign(signed))


def expires_at(card: Card, now=None) -> datetime:
    """When the current token is replaced by the next one (end of the current period)."""
    period = card.program.token_period_seconds
    return datetime.fromtimestamp((time_step(now, period) + 1) * period, tz=UTC)


def verify_token(token, now=None, *, merchant=None, load_card=None) -> TokenCheck:
    """Check a scanned token against the database: signature, key status, window, card, merchant.

    `merchant` is the scanning merchant; a genuine token of another merchant is `wrong_merchant`.
    `load_card(card_id)`: how to read the card (with its program), e.g. with what the caller shows next.
    """
    parsed = _parse(token)
    if parsed is None:
        return TokenCheck(reason=MALFORMED)
    found = dict(key_id=parsed.key_id, step=parsed.step)
    key = _signing_key(parsed.key_id, merchant)
    if key is None:
        return TokenCheck(reason=UNKNOWN_KEY, **found)
    if key.status == PassSigningKey.Status.REVOKED:
        return TokenCheck(reason=REVOKED_KEY, **found)
    if not _signature_ok(keys.b64url_decode(key.public_key), parsed):
        return TokenCheck(reason=BAD_SIGNATURE, **found)
    if merchant is not None and key.merchant_id != merchant.pk:
        return TokenCheck(reason=WRONG_MERCHANT, **found)
    card = (load_card or _CARD_WITH_PROGRAM.first)(parsed.card_id)
    if card is None or card.merchant_id != key.merchant_id:
        return TokenCheck(reason=UNKNOWN_CARD, **found)
    if not _in_window(parsed.step, now, card.program.token_period_seconds, card.program.token_drift_steps):
        return TokenCheck(reason=EXPIRED, **found)
    if not card.is_active:
        return TokenCheck(reason=CARD_CLOSED, **found)
    return TokenCheck(card=card, **found)


def _signing_key(key_id: str, merchant) -> PassSigningKey | None:
    """The key named in a token: the scanning merchant's keys come from the per-process rules cache
    (status included: revoking bumps the merchant's rules version); any other key from the database."""
    if merchant is not None:
        mine = rules_cache.cached(
            merchant.pk, rules_cache.version_of(merchant), "signing_keys",
            lambda: {key.key_id: key for key in PassSigningKey.objects.filter(merchant_id=merchant.pk)},
        )
        if key_id in mine:
            return mine[key_id]
    return PassSigningKey.objects.filter(key_id=key_id).first()


def verify_token_offline(token, public_keys: dict, period_seconds: int, drift_steps: int, now=None) -> OfflineCheck:
    """What a POS device can check without the network: signature and time window, with the
    merchant's published keys ({key_id: raw 32-byte public key, or its base64url text}). It cannot
    know whether the card is closed or the key was revoked since its last download; confirm online."""
    parsed = _parse(token)
    if parsed is None:
        return OfflineCheck(reason=MALFORMED)
    found = dict(key_id=parsed.key_id, step=parsed.step)
    public_key = public_keys.get(parsed.key_id)
    if public_key is None:
        return OfflineCheck(reason=UNKNOWN_KEY, **found)
    if isinstance(public_key, str):
        public_key = keys.b64url_decode(public_key)
    if not _signature_ok(public_key, parsed):
        return OfflineCheck(reason=BAD_SIGNATURE, **found)
    if not _in_window(parsed.step, now, period_seconds, drift_steps):
        return OfflineCheck(reason=EXPIRED, **found)
    return OfflineCheck(card_id=parsed.card_id, **found)
