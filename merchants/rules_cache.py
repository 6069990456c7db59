"""Per-process caches of a merchant's slow-changing rules, invalidated across processes by a version.

Why: every purchase read the merchant's offers and its program's tiers, and every token scan its
signing keys: a few statements and a millisecond of ORM work per request for rows that change a few
times a month (bench/profiles/). Each gunicorn worker now keeps them in memory.

How a cache stays correct: `RulesVersion.version` changes in the same transaction as any change to a
watched model (`watch`: offers, audiences, tiers, keys...), and the counter reads the version in the
same statement as the row it reads anyway (the device at authentication, the card when locking it), so
no extra round trip. A cached value is used only while the version it was loaded under is current; a
new version loads again. A request that read the version just before a change committed may use the
old rules once: it started before the change, as it would without a cache.

Signals are used here only to keep a cache honest, never for a business effect. A bulk
`QuerySet.update()` on a watched model sends no signal: call `bump(merchant_id)` beside it.
"""
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save

from merchants.models import RulesVersion

MAX_ENTRIES = 4096  # (merchant, name) pairs per process: a few MB at most

# SQL for the version of the merchant a row belongs to: pass the column, e.g. "t0.merchant_id".
_VERSION_SQL = "SELECT COALESCE((SELECT version FROM {table} WHERE merchant_id = {column}), 0)"

_entries: OrderedDict = OrderedDict()  # (merchant_id, name) -> (version, value)
_lock = threading.Lock()


def version_sql(merchant_column: str) -> str:
    """A scalar subquery giving the rules version of the merchant in `merchant_column`."""
    return _VERSION_SQL.format(table=RulesVersion._meta.db_table, column=merchant_column)


def version_of(merchant) -> int | None:
    """The version read with this merchant on the hot path, or None (then nothing is cached)."""
    return getattr(merchant, "rules_version", None)


def cached(merchant_id: int, version: int | None, name: str, load: Callable):
    """`load()`'s value, from this process's cache while `version` is the one it was loaded under.
    The value is shared by every request of the process: never mutate it."""
    if version is None:
        return load()
    key = (merchant_id, name)
    with _lock:
        hit = _entries.get(key)
        if hit is not None and hit[0] == version:
            _entries.move_to_end(key)
            return hit[1]
    value = load()
    with _lock:
        _entries[key] = (version, value)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def bump(merchant_id: int | None) -> None:
    """Give the merchant a new version (creating its row): caches loaded under the old one are dropped.

    A fresh random number, not old + 1: a change that rolls back must not leave its number free for a
    later change, or a cache filled inside the rolled-back transaction would pass for current."""
    if merchant_id is None:
        return
    table = connection.ops.quote_name(RulesVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (merchant_id, version) VALUES (%s, %s) "  # noqa: S608 (our table's name)
            "ON CONFLICT (merchant_id) DO UPDATE SET version = excluded.version",
            [merchant_id, secrets.randbits(62) + 1],
        )


def clear() -> None:
    """Forget everything cached in this process (tests; never needed for correctness)."""
    with _lock:
        _entries.clear()


def watch(model, merchant_id_of: Callable) -> None:
    """Bump the owning merchant's version whenever a `model` row is saved or deleted, or one of its
    many-to-many sets changes. `merchant_id_of(instance)` names the merchant (None: nothing to bump)."""

    def changed(sender, instance, **kwargs):
        if kwargs.get("raw"):  # loaddata: no merchant row to read yet
            return
        bump(merchant_id_of(instance))

    def relations_changed(sender, instance, action, reverse, pk_set, **kwargs):
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        if not reverse:
            bump(merchant_id_of(instance))
        else:  # changed from the other side: the watched rows are in pk_set
            for merchant_id in {merchant_id_of(row) for row in model.objects.filter(pk__in=pk_set or ())}:
                bump(merchant_id)

    uid = f"rules_cache:{model._meta.label}"
    post_save.connect(changed, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(changed, sender=model, weak=False, dispatch_uid=uid)
    for many in model._meta.many_to_many:
        m2m_changed.connect(relations_changed, sender=many.remote_field.through, weak=False,
                            dispatch_uid=f"{uid}:{many.name}")
