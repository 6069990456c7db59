"""The only writer of ledger entries. Services call it; nothing else creates an entry.

Invariants this module keeps:
1. A card's balance changes only by appending one LedgerEntry, in the same transaction that updates
   the card's cached balance, with the card row locked (`lock_card`) before the balance is read.
2. card.balance == sum(entry.delta) for every card, always (`manage.py check_ledger` proves it).
3. Entries are never updated or deleted; a correction is a new entry that `reverses` another.
4. Every balance change appends a `wallet.points.changed` event to the outbox in the same transaction.
"""
import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from core.joined_select import JoinedSelect
from merchants import rules_cache
from wallet import rules
from wallet.events import emit_card_event
from wallet.models import Card, LedgerEntry
from wallet.passes.notify import schedule_pass_update

# The card row locked, with what every balance change reads (program, merchant, wallet, tier) and the
# merchant's rules version, in one statement prepared once per process.
_LOCK_CARD = JoinedSelect(
    Card, ("program", "merchant", "wallet", "tier"), where="t0.id = %s", lock_own_row=True,
    extra={"rules_version": rules_cache.version_sql("t0.merchant_id")},
)


def lock_card(card_id: int) -> Card:
    """Lock a card row for the rest of the transaction and return it freshly read.

    Lock order everywhere: card first, then any reward or purchase row, so two services touching
    the same card can never wait on each other in opposite orders.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_card must run inside transaction.atomic()")
    card = _LOCK_CARD.first(card_id)
    if card is None:
        raise Card.DoesNotExist(f"No card {card_id}.")
    card.merchant.rules_version = card.rules_version
    return card


def program_tiers(card: Card) -> list:
    """The card's program's tiers by threshold, from the per-process rules cache when the card was locked."""
    return rules_cache.cached(
        card.merchant_id, rules_cache.version_of(card.merchant), f"tiers:{card.program_id}",
        lambda: list(card.program.tiers.order_by("threshold")),
    )


@dataclass(frozen=True)
class EntryDraft:
    """What a service asks the ledger to write. Amount fields are signed points."""

    kind: str
    delta: int
    occurred_at: dt.datetime
    source: str = "system"
    lifetime_delta: int = 0
    expires_at: dt.datetime | None = None
    store_id: int | None = None
    purchase_id: int | None = None
    redemption_id: int | None = None
    reverses_id: int | None = None
    multiplier: object = None
    offer_id: int | None = None
    offer_title: str = ""
    reason: str = ""
    actor_id: int | None = None


def append_entry(card: Card, draft: EntryDraft) -> LedgerEntry:
    """Apply one balance change to a card locked by `lock_card` in this transaction."""
    if draft.delta == 0:
        raise ValueError("A ledger entry must change the balance.")
    card.balance += draft.delta
    old_tier_id = card.tier_id
    if draft.lifetime_delta:
        card.lifetime_points = max(0, card.lifetime_points + draft.lifetime_delta)
        tier = rules.tier_for(card.lifetime_points, program_tiers(card))
        card.tier = tier
    card.pass_updated_at = timezone.now()
    card.save(update_fields=["balance", "lifetime_points", "tier", "pass_updated_at"])
    schedule_pass_update(card.pk)
    entry = LedgerEntry.objects.create(
        merchant_id=card.merchant_id,
        card=card,
        kind=draft.kind,
        delta=draft.delta,
        balance_after=card.balance,
        expires_at=draft.expires_at,
        store_id=draft.store_id,
        purchase_id=draft.purchase_id,
        redemption_id=draft.redemption_id,
        reverses_id=draft.reverses_id,
        multiplier=draft.multiplier,
        offer_id=draft.offer_id,
        offer_title=draft.offer_title,
        reason=draft.reason,
        actor_id=draft.actor_id,
        source=draft.source,
        occurred_at=draft.occurred_at,
    )
    emit_card_event(
        card,
        "wallet.points.changed",
        occurred_at=draft.occurred_at,
        payload={
            "program_id": card.program_id,
            "entry_id": entry.pk,
            "kind": draft.kind,
            "delta": draft.delta,
            "balance": card.balance,
            "lifetime_points": card.lifetime_points,
            "reason": draft.reason,
            **({"offer_id": draft.offer_id} if draft.offer_id else {}),
        },
    )
    if card.tier_id != old_tier_id:
        emit_card_event(
            card,
            "wallet.tier.changed",
            occurred_at=draft.occurred_at,
            payload={
                "previous_tier_id": old_tier_id,
                "tier_id": card.tier_id,
                "tier_name": card.tier.name if card.tier else None,
                "lifetime_points": card.lifetime_points,
            },
        )
    return entry


def credit_expiry(card: Card, occurred_at: dt.datetime) -> dt.datetime | None:
    """When points credited to `card` at `occurred_at` expire under its program's policy (None: never)."""
    return rules.expiry_time(occurred_at, card.program.points_validity_days, card.merchant.time_zone)


def expirable_points_now(card: Card, now: dt.datetime) -> int:
    """How many of a locked card's points have passed their expiry and are still unspent."""
    lot = Q(delta__gt=0, expires_at__isnull=False)
    lot_reversal = Q(reverses__delta__gt=0, reverses__expires_at__isnull=False)
    sums = LedgerEntry.objects.filter(card=card).aggregate(
        lots_due=Sum("delta", filter=lot & Q(expires_at__lte=now)),
        lot_reversals_due=Sum("delta", filter=lot_reversal & Q(reverses__expires_at__lte=now)),
        debits=Sum("delta", filter=Q(delta__lt=0) & ~lot_reversal),
        debit_reversals=Sum("delta", filter=Q(delta__gt=0, reverses__delta__lt=0)),
    )
    return rules.expirable_points(
        lots_due=sums["lots_due"] or 0,
        lot_reversals_due=sums["lot_reversals_due"] or 0,
        debits=sums["debits"] or 0,
        debit_reversals=sums["debit_reversals"] or 0,
        balance=card.balance,
    )


def cards_out_of_balance():
    """Cards whose cached balance differs from the sum of their entries: (card id, number, balance, sum)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.id, c.number, c.balance, COALESCE(s.total, 0)
            FROM {Card._meta.db_table} c
            LEFT JOIN (
                SELECT card_id, SUM(delta) AS total FROM {LedgerEntry._meta.db_table} GROUP BY card_id
            ) s ON s.card_id = c.id
            WHERE c.balance <> COALESCE(s.total, 0)
            ORDER BY c.id
            """
        )
        return cursor.fetchall()
