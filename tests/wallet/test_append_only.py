"""Ledger entries can be added, never changed or removed."""
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.models import Card, IdempotencyRecord, LedgerEntry, Wallet
from wallet.models.ledger import AppendOnlyError

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    world = build_world()
    buy(world.card, 5000)
    return LedgerEntry.objects.get(card=world.card)


def snapshot():
    return list(LedgerEntry.objects.order_by("pk").values_list("pk", "delta", "balance_after", "kind"))


def test_saving_a_changed_entry_raises_and_changes_nothing(entry):
    before = snapshot()
    entry.delta = 5000
    with pytest.raises(AppendOnlyError):
        entry.save()
    assert snapshot() == before


def test_deleting_an_entry_raises_and_changes_nothing(entry):
    before = snapshot()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert snapshot() == before


def test_bulk_updates_raise_and_change_nothing(entry):
    before = snapshot()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(delta=1)
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.bulk_update([entry], ["delta"])
    assert snapshot() == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    ["UPDATE wallet_ledgerentry SET delta = 999 WHERE id = %s", "DELETE FROM wallet_ledgerentry WHERE id = %s"],
)
def test_database_trigger_refuses_raw_sql_that_bypasses_the_orm(entry, statement):
    before = snapshot()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [entry.pk])
    assert snapshot() == before


def test_database_enforces_one_card_per_wallet_and_program_and_one_wallet_per_customer():
    world = build_world()
    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.create(wallet=world.card.wallet, program=world.program, merchant=world.merchant, number="80")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.create(customer=world.customer)


def test_database_enforces_unique_idempotency_key_per_merchant():
    world = build_world()
    fields = {"merchant": world.merchant, "key": "k", "operation": "x", "fingerprint": "f", "result": {}}
    IdempotencyRecord.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyRecord.objects.create(**fields)
