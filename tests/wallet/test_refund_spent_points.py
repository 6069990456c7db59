"""A refund of a sale a reward was used on gives the points spent on it back, pro rata and once.

Odoo deducted redeemed points again on such a refund (odoo #212922); here the customer ends where
they stood before the sale, whatever the order and number of the refunds.
"""
import pytest
from django.core.management import call_command

from merchants.models import Program
from tests.concurrency import run_together
from tests.factories import build_world
from tests.wallet.helpers import buy, ledger_sum, written_rows
from wallet.errors import RefundExceedsPurchase
from wallet.models import Card, DomainEvent, LedgerEntry, Purchase, Redemption
from wallet.services import mark_coupon_used, redeem_reward, refund_purchase


def balance(card) -> int:
    return Card.objects.get(pk=card.pk).balance


def coupon_used_on(card, reward, sale_external_id, key="redeem-1"):
    result = redeem_reward(card, reward, idempotency_key=key)
    return mark_coupon_used(Redemption.objects.get(pk=result.redemption_id), sale_external_id=sale_external_id)


def sale_paid_partly_with_points(world, amount=1000):
    """250 points, a coffee (100) used on sale S-2, S-2 itself earns amount/100 points."""
    buy(world.card, 25000, "S-1")
    coupon = coupon_used_on(world.card, world.coffee, "S-2")
    buy(world.card, amount, "S-2")
    return coupon, Purchase.objects.get(external_id="S-2")


@pytest.mark.django_db
def test_a_full_refund_returns_the_points_spent_on_the_sale_once_and_takes_back_what_it_earned():
    world = build_world()
    coupon, sale = sale_paid_partly_with_points(world)
    assert balance(world.card) == 250 - 100 + 10

    result = refund_purchase(sale, amount=None, idempotency_key="refund-1")
    assert (result.points_returned, result.points_reversed, result.balance) == (100, 10, 250)
    returned = LedgerEntry.objects.get(kind=LedgerEntry.Kind.REDEMPTION_CANCEL)
    assert returned.delta == 100 and returned.purchase_id == sale.pk and returned.redemption_id == coupon.pk
    assert returned.reverses == coupon.entries.get(kind=LedgerEntry.Kind.REDEEM)
    coupon.refresh_from_db()
    assert coupon.points_returned == 100 and coupon.status == Redemption.Status.USED  # it was handed over
    event = DomainEvent.objects.get(event_type="wallet.redemption.cancelled")
    assert {key: event.payload.get(key) for key in ("redemption_id", "points_returned", "reason", "purchase_id")} == {
        "redemption_id": coupon.pk, "points_returned": 100, "reason": "sale_refunded", "purchase_id": sale.pk}

    rows = written_rows()
    assert refund_purchase(sale, amount=None, idempotency_key="refund-1") == result  # the same delivery again
    with pytest.raises(RefundExceedsPurchase):
        refund_purchase(sale, amount=None, idempotency_key="refund-2")  # another refund of a refunded sale
    assert written_rows() == rows
    assert balance(world.card) == 250 == ledger_sum(world.card)


@pytest.mark.django_db
def test_partial_refunds_return_the_spent_points_pro_rata_and_together_exactly_the_reward_cost():
    world = build_world()
    coupon, sale = sale_paid_partly_with_points(world, amount=900)
    returned = [refund_purchase(sale, amount=300, idempotency_key=f"part-{n}").points_returned for n in range(3)]
    assert returned == [33, 34, 33]  # 100 x 300/900 = 33.3, x 600/900 = 66.7 (rounded 67), then the rest
    coupon.refresh_from_db()
    assert coupon.points_returned == 100
    assert balance(world.card) == 250 == ledger_sum(world.card)


@pytest.mark.django_db
def test_points_that_come_back_are_counted_before_a_floor_at_zero_reversal():
    """The sale's own points paid for the reward: refunding it must neither leave them nor go negative."""
    world = build_world(refund_policy=Program.RefundPolicy.FLOOR_AT_ZERO)
    buy(world.card, 10000, "S-9")  # 100 points
    coupon_used_on(world.card, world.coffee, "S-9")  # all of them spent on a coffee handed over with S-9
    assert balance(world.card) == 0
    result = refund_purchase(Purchase.objects.get(external_id="S-9"), amount=None, idempotency_key="r")
    assert (result.points_returned, result.points_reversed, result.balance) == (100, 100, 0)
    assert ledger_sum(world.card) == 0


@pytest.mark.django_db
def test_only_a_coupon_used_on_that_sale_comes_back():
    world = build_world()
    buy(world.card, 30000, "S-1")
    coupon_used_on(world.card, world.coffee, "", key="redeem-unlinked")  # used, sale not named
    coupon_used_on(world.card, world.coffee, "S-other", key="redeem-other")
    redeem_reward(world.card, world.coffee, idempotency_key="redeem-unused")  # issued, not yet used
    buy(world.card, 1000, "S-2")
    before = balance(world.card)
    result = refund_purchase(Purchase.objects.get(external_id="S-2"), amount=None, idempotency_key="r")
    assert result.points_returned == 0 and balance(world.card) == before - 10
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REDEMPTION_CANCEL).exists()


@pytest.mark.django_db
def test_a_coupon_of_another_merchant_used_on_a_sale_with_the_same_id_is_not_touched():
    here, there = build_world(), build_world()
    buy(there.card, 25000, "T-1")
    theirs = coupon_used_on(there.card, there.coffee, "S-2")
    coupon, sale = sale_paid_partly_with_points(here)
    refund_purchase(sale, amount=None, idempotency_key="refund-1")
    theirs.refresh_from_db()
    assert theirs.points_returned == 0 and balance(there.card) == 150


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_refunds_of_a_sale_paid_with_points_return_them_once():
    world = build_world()
    coupon, sale = sale_paid_partly_with_points(world)

    def refund(index):
        try:
            return refund_purchase(sale, amount=None, idempotency_key=f"refund-{index}").points_returned
        except RefundExceedsPurchase:
            return "refused"

    outcomes = run_together(20, refund)
    assert sorted(outcomes, key=str) == [100] + ["refused"] * 19
    assert balance(world.card) == 250 == ledger_sum(world.card)
    assert Redemption.objects.get(pk=coupon.pk).points_returned == 100
    call_command("check_ledger")
