"""Reversing a chosen ledger entry: once, for what remains of it, never below zero."""
import pytest

from tests.wallet.helpers import buy, ledger_sum, written_rows
from tests.wallet.test_concurrency import run_together
from wallet.errors import EntryAlreadyReversed, EntryNotReversible, InsufficientPoints, InvalidRequest
from wallet.models import Card, LedgerEntry, Purchase
from wallet.services import adjust_points, redeem_reward, refund_purchase, reverse_entry


def _reverse(entry, key="rev-1", reason="Wrong card"):
    return reverse_entry(entry, reason=reason, actor=None, idempotency_key=key)


@pytest.mark.django_db
def test_reversing_an_earn_takes_back_its_points_and_lifetime_and_a_later_refund_takes_nothing(world):
    buy(world.card, 4200, "sale-1")
    earn = LedgerEntry.objects.get(card=world.card, kind="earn")
    result = _reverse(earn)
    card = Card.objects.get(pk=world.card.pk)
    assert (result.delta, card.balance, card.lifetime_points) == (-42, 0, 0)
    assert ledger_sum(card) == card.balance
    refund = refund_purchase(Purchase.objects.get(external_id="sale-1"), amount=None, idempotency_key="refund-1")
    assert refund.points_reversed == 0
    assert Card.objects.get(pk=world.card.pk).balance == 0


@pytest.mark.django_db
def test_an_earn_partly_refunded_is_reversed_only_for_the_rest(world):
    buy(world.card, 4000, "sale-2")
    refund_purchase(Purchase.objects.get(external_id="sale-2"), amount=1000, idempotency_key="refund-2")
    result = _reverse(LedgerEntry.objects.get(card=world.card, kind="earn"))
    assert result.delta == -30
    assert Purchase.objects.get(external_id="sale-2").points_reversed == 40
    assert Card.objects.get(pk=world.card.pk).balance == 0


@pytest.mark.django_db
def test_reversing_a_removal_gives_the_points_back(world):
    buy(world.card, 1000)
    removal = adjust_points(world.card, delta=-4, reason="Oops", actor=None, idempotency_key="adj-1")
    result = _reverse(LedgerEntry.objects.get(pk=removal.entry_id))
    assert (result.delta, result.balance) == (4, 10)


@pytest.mark.django_db
def test_refusals_write_nothing(world):
    buy(world.card, 20000)
    redemption = redeem_reward(world.card, world.coffee, idempotency_key="redeem-1")
    rows = written_rows()
    with pytest.raises(EntryNotReversible):
        _reverse(LedgerEntry.objects.get(pk=redemption.entry_id), key="r1")
    with pytest.raises(InvalidRequest):
        _reverse(LedgerEntry.objects.get(card=world.card, kind="earn"), key="r2", reason=" ")
    with pytest.raises(InsufficientPoints):  # 200 earned, 100 spent: the earn cannot be undone in full
        _reverse(LedgerEntry.objects.get(card=world.card, kind="earn"), key="r3")
    assert written_rows() == rows


@pytest.mark.django_db
def test_an_entry_is_reversed_once_whatever_the_key(world):
    buy(world.card, 1000)
    earn = LedgerEntry.objects.get(card=world.card, kind="earn")
    first = _reverse(earn, key="a")
    assert _reverse(earn, key="a") == first  # the same request again is a replay
    with pytest.raises(EntryAlreadyReversed):
        _reverse(earn, key="b")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_admins_reversing_one_entry_at_once_reverse_it_once():
    from tests.factories import build_world

    world = build_world()
    buy(world.card, 5000)
    earn = LedgerEntry.objects.get(card=world.card, kind="earn")

    def attempt(index):
        try:
            return _reverse(earn, key=f"concurrent-{index}").delta
        except EntryAlreadyReversed:
            return "already"

    outcomes = run_together(10, attempt)
    assert sorted(outcomes, key=str) == [-50] + ["already"] * 9
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == ledger_sum(card) == 0
