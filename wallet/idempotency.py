"""Idempotent execution of retryable writes, keyed per merchant.

The key is claimed by inserting its record first, in the same transaction as the work. A
concurrent request with the same key blocks on the unique index until the first commits, then
fails the insert and reads the stored result: the work runs once, every caller gets one answer.
If the work raises, the whole transaction, claim included, rolls back, so a business refusal
(insufficient points, say) is never stored and a retry is judged afresh.
"""
import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction

from wallet.errors import IdempotencyKeyReused, InvalidRequest, RequestInProgress
from wallet.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def request_fingerprint(operation: str, request: dict) -> str:
    canonical = json.dumps({"operation": operation, "request": request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def scoped_key(scope: str, raw: str) -> str:
    """Keys are unique per merchant in the database; prefixing the caller (a customer, a device)
    keeps one caller's key (say a client that counts 1, 2, 3) from ever colliding with another's.
    A key too long to carry the prefix is replaced by its SHA-256, which is as unique."""
    prefix = f"{scope}:"
    if len(prefix) + len(raw) <= MAX_KEY_LENGTH:
        return prefix + raw
    return f"{prefix}sha256:{hashlib.sha256(raw.encode()).hexdigest()}"


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            "An idempotency key of 1 to 255 characters is required.", fields={"idempotency_key": ["Invalid."]}
        )
    return key


def run_idempotent(
    *, merchant_id: int, key: str, operation: str, request: dict, work: Callable[[], dict]
) -> tuple[dict, bool]:
    """Run `work` once per (merchant, key). Returns (result, replayed).

    The same key with a different operation or request raises IdempotencyKeyReused and writes nothing.
    """
    validate_key(key)
    fingerprint = request_fingerprint(operation, request)
    for _attempt in range(3):
        stored = IdempotencyRecord.objects.filter(merchant_id=merchant_id, key=key).first()
        if stored is not None:
            if stored.operation != operation or stored.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            return stored.result, True
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        merchant_id=merchant_id, key=key, operation=operation, fingerprint=fingerprint, result={}
                    )
            except IntegrityError:
                continue  # another request holds or held the key: read its result on the next pass
            result = work()
            record.result = result
            record.save(update_fields=["result"])
            return result, False
    raise RequestInProgress()
