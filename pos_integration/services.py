"""Registering, rotating, revoking and authenticating POS devices."""
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core.errors import ValidationFailed
from core.joined_select import JoinedSelect
from merchants import rules_cache
from merchants.models import Store
from pos_integration.keys import hash_key, key_matches, new_device_key, prefix_of
from pos_integration.models import PosDevice

# Read on every POS request: the device, its merchant and store, and the merchant's rules version (for
# the per-process caches of merchants.rules_cache), in one prepared statement.
_ACTIVE_DEVICE_BY_PREFIX = JoinedSelect(
    PosDevice, ("merchant", "store"), where="t0.key_prefix = %s AND t0.is_active = %s",
    extra={"rules_version": rules_cache.version_sql("t0.merchant_id")},
)


@dataclass(frozen=True)
class IssuedKey:
    """A device and its key. The key exists only here: show it once, it cannot be recovered."""

    device: PosDevice
    key: str


def register_device(store: Store, name: str) -> IssuedKey:
    if not name or len(name) > 120:
        raise ValidationFailed("A device name of 1 to 120 characters is required.", fields={"name": ["Invalid."]})
    prefix, key = new_device_key()
    device = PosDevice.objects.create(
        merchant_id=store.merchant_id, store=store, name=name, key_prefix=prefix, key_hash=hash_key(key)
    )
    return IssuedKey(device=device, key=key)


def rename_device(device: PosDevice, name: str) -> PosDevice:
    if not name or len(name) > 120:
        raise ValidationFailed("A device name of 1 to 120 characters is required.", fields={"name": ["Invalid."]})
    device.name = name
    device.save(update_fields=["name"])
    return device


def rotate_device_key(device: PosDevice) -> IssuedKey:
    """Replace the key; the old one stops working at once."""
    prefix, key = new_device_key()
    with transaction.atomic():
        device = PosDevice.objects.select_for_update().get(pk=device.pk)
        device.key_prefix, device.key_hash = prefix, hash_key(key)
        device.is_active, device.revoked_at = True, None
        device.save(update_fields=["key_prefix", "key_hash", "is_active", "revoked_at"])
    return IssuedKey(device=device, key=key)


def revoke_device(device: PosDevice) -> None:
    """The key stops working at once. Saved (not a bulk update) so the audit history shows who did it."""
    with transaction.atomic():
        device = PosDevice.objects.select_for_update().get(pk=device.pk)
        if device.is_active:
            device.is_active, device.revoked_at = False, timezone.now()
            device.save(update_fields=["is_active", "revoked_at"])


def authenticate_device(key: str) -> PosDevice | None:
    """The active device this key belongs to, or None. Never says which part was wrong."""
    prefix = prefix_of(key or "")
    if prefix is None:
        return None
    device = _ACTIVE_DEVICE_BY_PREFIX.first(prefix, True)
    if device is None or not key_matches(key, device.key_hash):
        return None
    device.merchant.rules_version = device.rules_version
    return device
