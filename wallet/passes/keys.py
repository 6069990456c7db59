"""Merchants' Ed25519 pass-signing keys: create on demand, rotate, revoke, publish.

Each merchant has at most one `active` key (it signs new tokens). Rotation makes a new key active and
keeps the old one `retired`: it still verifies the tokens it signed until their drift window ends,
so a pass on a customer's screen keeps working across a rotation. A `revoked` key verifies nothing.

Private keys are stored encrypted with Fernet under a key derived from settings.SIGNING_KEY
(HKDF-SHA256, fixed info label), and never leave this module except as a key object used to sign:
they are not logged, serialised or returned by any API.
"""
import base64
import functools
import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from merchants.models import Merchant
from wallet.models.passes import PassSigningKey

Status = PassSigningKey.Status

KEY_ID_BYTES = 4  # the key id travels in every token, so it is short: 8 hex characters
_HKDF_INFO = b"tessera/pass-signing-keys/fernet/v1"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=4)
def _fernet_for(signing_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(signing_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> Fernet:
    return _fernet_for(settings.SIGNING_KEY)


def _new_key_id() -> str:
    while True:
        key_id = secrets.token_hex(KEY_ID_BYTES)
        if not PassSigningKey.objects.filter(key_id=key_id).exists():
            return key_id


def _create_key(merchant: Merchant) -> PassSigningKey:
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PassSigningKey.objects.create(
        merchant=merchant,
        key_id=_new_key_id(),
        public_key=b64url(raw_public),
        private_key_encrypted=_fernet().encrypt(raw_private).decode("ascii"),
        status=Status.ACTIVE,
    )


def _lock(merchant: Merchant) -> None:
    """Serialise key changes of one merchant: lock the merchant row (there may be no key row yet)
    and its key rows. A no-op on SQLite, which serialises writers anyway."""
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
    list(PassSigningKey.objects.select_for_update().filter(merchant=merchant).values_list("pk", flat=True))


def active_key(merchant: Merchant) -> PassSigningKey:
    """The merchant's active key, created on first use."""
    key = PassSigningKey.objects.filter(merchant=merchant, status=Status.ACTIVE).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            _lock(merchant)
            key = PassSigningKey.objects.filter(merchant=merchant, status=Status.ACTIVE).first()
            return key or _create_key(merchant)
    except IntegrityError:  # another process created it between our read and our insert
        return PassSigningKey.objects.get(merchant=merchant, status=Status.ACTIVE)


def rotate_key(merchant: Merchant) -> PassSigningKey:
    """Make a new active key; the previous active key becomes retired (it still verifies)."""
    with transaction.atomic():
        _lock(merchant)
        PassSigningKey.objects.filter(merchant=merchant, status=Status.ACTIVE).update(
            status=Status.RETIRED, retired_at=timezone.now()
        )
        return _create_key(merchant)


def revoke_key(key: PassSigningKey) -> PassSigningKey:
    """Revoke a key (e.g. its private half may have leaked): tokens it signed no longer verify. If it
    was the active key, the merchant's next token creates a fresh key."""
    with transaction.atomic():
        key = PassSigningKey.objects.select_for_update().get(pk=key.pk)
        key.status = Status.REVOKED
        key.retired_at = key.retired_at or timezone.now()
        key.save(update_fields=["status", "retired_at"])
    return key


def public_keys(merchant: Merchant) -> list[dict]:
    """What the merchant's POS devices download to verify offline: active and retired keys only."""
    keys = PassSigningKey.objects.filter(merchant=merchant, status__in=[Status.ACTIVE, Status.RETIRED])
    return [{"key_id": k.key_id, "public_key": k.public_key, "status": k.status} for k in keys]


# Key objects, cached: decrypting and loading a key on every token would dominate the cost of a token.
# Cached by the stored values, so a changed row is simply another cache entry.

@functools.lru_cache(maxsize=256)
def _private_key_object(key_id: str, private_key_encrypted: str, signing_key: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_fernet_for(signing_key).decrypt(private_key_encrypted.encode()))


def private_key_of(key: PassSigningKey) -> Ed25519PrivateKey:
    return _private_key_object(key.key_id, key.private_key_encrypted, settings.SIGNING_KEY)


@functools.lru_cache(maxsize=1024)
def _public_key_object(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def public_key_object(raw_public_key: bytes) -> Ed25519PublicKey:
    return _public_key_object(bytes(raw_public_key))
