"""Idempotent execution of retryable writes, keyed per merchant.

The key is claimed by inserting its record first, in the same transaction as the work. A
concurrent request with the same key blocks on the unique index until the first commits, then
finds its insert did nothing and reads the stored result: the work runs once, every caller gets one
answer. If the work raises, the whole transaction, claim included, rolls back, so a business refusal
(insufficient points, say) is never stored and a retry is judged afresh.

The claim is one `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (PostgreSQL, and SQLite 3.35+): a
taken key answers with no row instead of an error, so the claim needs no read before it and no
savepoint of its own around it. That is three statements fewer on every write than reading the key,
then inserting inside a savepoint that a unique violation would roll back.
"""
import hashlib
import json
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

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
        with transaction.atomic():
            record_id = _claim(merchant_id, key, operation, fingerprint)
            if record_id is not None:
                result = work()
                IdempotencyRecord.objects.filter(pk=record_id).update(result=result)
                return result, False
            # Taken: by a request that has committed (the insert waited for it), or earlier in this
            # very transaction. Either way its record is visible now.
            stored = (
                IdempotencyRecord.objects.filter(merchant_id=merchant_id, key=key)
                .values_list("operation", "fingerprint", "result")
                .first()
            )
        if stored is not None:
            stored_operation, stored_fingerprint, stored_result = stored
            if stored_operation != operation or stored_fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            return stored_result, True
    raise RequestInProgress()


def _claim(merchant_id: int, key: str, operation: str, fingerprint: str) -> int | None:
    """Insert the key's record with an empty result; its id, or None when the key is taken."""
    connection = transaction.get_connection()
    meta = IdempotencyRecord._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(name).column)
        for name in ("merchant", "key", "operation", "fingerprint", "result", "created_at")
    )
    values = (
        merchant_id, key, operation, fingerprint,
        meta.get_field("result").get_db_prep_value({}, connection),
        meta.get_field("created_at").get_db_prep_value(timezone.now(), connection),
    )
    table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
    # Table and column names come from the model's metadata; every value is a bound parameter.
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING {pk}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return None if row is None else row[0]
