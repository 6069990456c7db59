"""Worked examples of the ledger services, read like a merchant's exercises."""
import datetime as dt
from decimal import Decimal

import pytest

from merchants.models import Program, Reward
from tests.factories import build_world, make_card, make_customer, make_program
from tests.wallet.helpers import buy, ledger_sum, written_rows
from wallet.errors import (
    CardClosed,
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidRequest,
    PurchaseAlreadyRecorded,
    RedemptionNotCancellable,
    RefundExceedsPurchase,
    RewardUnavailable,
)
from wallet.models import Card, DomainEvent, LedgerEntry, Purchase, Redemption
from wallet.services import (
    adjust_points,
    cancel_redemption,
    enroll,
    expire_due_points,
    expire_points,
    redeem_reward,
    refund_purchase,
)

pytestmark = pytest.mark.django_db


# Enrolment ----------------------------------------------------------------------------------------

def test_enrolling_pays_the_welcome_bonus_once_and_a_second_enrol_returns_the_same_card():
    world = build_world(welcome_bonus=50)
    customer = make_customer()
    first = enroll(customer, world.program)
    second = enroll(customer, world.program)
    assert first.created and not second.created
    assert second.card.pk == first.card.pk
    card = Card.objects.get(pk=first.card.pk)
    assert card.balance == 50 and ledger_sum(card) == 50
    assert card.entries.get().kind == LedgerEntry.Kind.WELCOME
    assert DomainEvent.objects.filter(event_type="wallet.card.enrolled", card_id=card.pk).count() == 1


def test_each_wallet_holds_one_card_per_program_and_many_programs():
    world = build_world()
    other_program = make_program(world.merchant)
    card_b = make_card(other_program, world.customer)
    assert {world.card.pk, card_b.pk} == set(world.customer.wallet.cards.values_list("pk", flat=True))
    assert world.card.number != card_b.number


# Earning ------------------------------------------------------------------------------------------

def test_purchase_earns_by_rate_and_tier_multiplier_and_upgrades_the_tier():
    world = build_world()
    result = buy(world.card, 60000)  # €600 at 1 pt/€, Silver x1
    assert result.points_earned == 600 and result.balance == 600
    card = Card.objects.get(pk=world.card.pk)
    assert card.tier == world.gold and card.lifetime_points == 600
    assert DomainEvent.objects.filter(event_type="wallet.tier.changed", card_id=card.pk).exists()
    second = buy(card, 1000)  # €10 as Gold x2
    assert second.points_earned == 20
    entry = LedgerEntry.objects.get(pk=second.entry_id)
    assert entry.multiplier == Decimal("2.00") and entry.kind == LedgerEntry.Kind.EARN
    assert ledger_sum(card) == 620


def test_purchase_appends_ledger_entry_and_outbox_events_in_one_go():
    world = build_world()
    result = buy(world.card, 2500, "till-42")
    purchase = Purchase.objects.get(pk=result.purchase_id)
    assert purchase.points_earned == 25 and purchase.external_id == "till-42"
    types = list(DomainEvent.objects.filter(card_id=world.card.pk).values_list("event_type", flat=True))
    assert "wallet.points.changed" in types and "wallet.purchase.recorded" in types


def test_retry_with_same_key_returns_first_result_and_writes_nothing_more():
    world = build_world()
    first = buy(world.card, 1000, "sale-1", key="k-1")
    before = written_rows()
    again = buy(world.card, 1000, "sale-1", key="k-1")
    assert again == first and again.replayed
    assert written_rows() == before


def test_same_key_with_a_different_request_is_a_conflict_and_writes_nothing():
    world = build_world()
    buy(world.card, 1000, "sale-1", key="k-1")
    before = written_rows()
    with pytest.raises(IdempotencyKeyReused):
        buy(world.card, 2000, "sale-1", key="k-1")
    assert written_rows() == before


def test_idempotency_keys_are_scoped_per_merchant():
    world_a, world_b = build_world(), build_world()
    a = buy(world_a.card, 1000, "sale-1", key="shared-key")
    b = buy(world_b.card, 3000, "sale-1", key="shared-key")
    assert (a.points_earned, b.points_earned) == (10, 30)


def test_same_sale_arriving_under_a_new_key_earns_once():
    world = build_world()
    first = buy(world.card, 1000, "order-7", key="webhook-delivery")
    second = buy(world.card, 1000, "order-7", key="manual-sync")
    assert second.purchase_id == first.purchase_id and second.entry_id == first.entry_id
    assert Card.objects.get(pk=world.card.pk).balance == 10
    with pytest.raises(PurchaseAlreadyRecorded):
        buy(world.card, 5000, "order-7", key="different-amount")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(0, "EUR"), (-500, "EUR"), (10**12, "EUR"), (12.5, "EUR"), (1000, "USD")],
)
def test_bad_purchase_input_is_refused_and_writes_nothing(amount, currency):
    world = build_world()
    before = written_rows()
    with pytest.raises(InvalidRequest):
        buy(world.card, amount, currency=currency)
    assert written_rows() == before


def test_purchase_at_another_merchants_store_is_refused():
    world, other = build_world(), build_world()
    with pytest.raises(InvalidRequest):
        buy(world.card, 1000, store_id=other.store.pk)


def test_closed_card_cannot_earn():
    world = build_world()
    Card.objects.filter(pk=world.card.pk).update(status=Card.Status.CLOSED)
    with pytest.raises(CardClosed):
        buy(world.card, 1000)


# Redemption ---------------------------------------------------------------------------------------

def test_redeeming_spends_points_and_issues_a_single_use_coupon():
    world = build_world()
    buy(world.card, 15000)
    result = redeem_reward(world.card, world.coffee, idempotency_key="r-1")
    assert result.balance == 50 and result.points == 100 and len(result.coupon_code) == 10
    redemption = Redemption.objects.get(pk=result.redemption_id)
    assert redemption.status == Redemption.Status.ISSUED
    assert redeem_reward(world.card, world.coffee, idempotency_key="r-1") == result
    assert Card.objects.get(pk=world.card.pk).balance == 50


def test_redemption_never_overdraws():
    world = build_world()
    buy(world.card, 9900)
    before = written_rows()
    with pytest.raises(InsufficientPoints) as refused:
        redeem_reward(world.card, world.coffee, idempotency_key="r-1")
    assert "99" in refused.value.message
    assert written_rows() == before
    # The refusal was not stored: the same key works once the card can afford it.
    buy(world.card, 100)
    assert redeem_reward(world.card, world.coffee, idempotency_key="r-1").balance == 0


def test_reward_of_another_program_or_out_of_stock_is_unavailable():
    world, other = build_world(), build_world()
    buy(world.card, 100000)
    with pytest.raises(RewardUnavailable):
        redeem_reward(world.card, other.coffee, idempotency_key="r-x")
    limited = Reward.objects.create(program=world.program, name="Mug", points_cost=10, stock=1)
    redeem_reward(world.card, limited, idempotency_key="mug-1")
    with pytest.raises(RewardUnavailable):
        redeem_reward(world.card, limited, idempotency_key="mug-2")
    assert Reward.objects.get(pk=limited.pk).stock == 0


def test_cancelling_an_unused_coupon_returns_points_through_a_reversing_entry():
    world = build_world()
    buy(world.card, 10000)
    redeemed = redeem_reward(world.card, world.coffee, idempotency_key="r-1")
    redemption = Redemption.objects.get(pk=redeemed.redemption_id)
    cancelled = cancel_redemption(redemption, idempotency_key="c-1")
    assert cancelled.balance == 100 and cancelled.points_returned == 100
    entry = LedgerEntry.objects.get(pk=cancelled.entry_id)
    assert entry.reverses_id == redeemed.entry_id
    assert cancel_redemption(redemption, idempotency_key="c-1") == cancelled
    with pytest.raises(RedemptionNotCancellable):
        cancel_redemption(redemption, idempotency_key="c-2")
    assert Card.objects.get(pk=world.card.pk).balance == 100


# Refunds ------------------------------------------------------------------------------------------

def test_full_refund_reverses_exactly_the_points_earned_once():
    world = build_world()
    sale = buy(world.card, 5000)
    purchase = Purchase.objects.get(pk=sale.purchase_id)
    refund = refund_purchase(purchase, amount=None, idempotency_key="rf-1")
    assert refund.points_reversed == 50 and refund.balance == 0
    assert Purchase.objects.get(pk=purchase.pk).status == Purchase.Status.REFUNDED
    with pytest.raises(RefundExceedsPurchase):
        refund_purchase(purchase, amount=None, idempotency_key="rf-2")
    assert refund_purchase(purchase, amount=None, idempotency_key="rf-1") == refund
    assert Card.objects.get(pk=world.card.pk).balance == 0


def test_refund_reverses_points_pro_rata():
    world = build_world()
    sale = buy(world.card, 10000)  # 100 points
    purchase = Purchase.objects.get(pk=sale.purchase_id)
    first = refund_purchase(purchase, amount=2500, idempotency_key="rf-1")
    assert first.points_reversed == 25 and first.balance == 75
    rest = refund_purchase(purchase, amount=7500, idempotency_key="rf-2")
    assert rest.points_reversed == 75 and rest.balance == 0
    entry = LedgerEntry.objects.get(pk=rest.entry_id)
    assert entry.reverses_id == sale.entry_id and entry.kind == LedgerEntry.Kind.REFUND


def test_earn_refund_earn_cycle_never_grows_the_balance():
    world = build_world()
    for round_number in range(3):
        sale = buy(world.card, 4000, f"cycle-{round_number}")
        refund_purchase(Purchase.objects.get(pk=sale.purchase_id), amount=None, idempotency_key=f"rf-{round_number}")
    assert Card.objects.get(pk=world.card.pk).balance == 0


def test_refund_after_points_were_spent_may_go_negative_under_allow_negative_policy():
    world = build_world(refund_policy=Program.RefundPolicy.ALLOW_NEGATIVE)
    sale = buy(world.card, 10000)
    redeem_reward(world.card, world.coffee, idempotency_key="r-1")
    refund = refund_purchase(Purchase.objects.get(pk=sale.purchase_id), amount=None, idempotency_key="rf")
    assert refund.balance == -100 and refund.points_reversed == 100


def test_refund_stops_at_zero_under_floor_policy():
    world = build_world(refund_policy=Program.RefundPolicy.FLOOR_AT_ZERO)
    sale = buy(world.card, 15000)
    redeem_reward(world.card, world.coffee, idempotency_key="r-1")  # 50 left
    refund = refund_purchase(Purchase.objects.get(pk=sale.purchase_id), amount=None, idempotency_key="rf")
    assert refund.points_reversed == 50 and refund.balance == 0
    assert Purchase.objects.get(pk=sale.purchase_id).points_reversed == 50


def test_refund_lowers_lifetime_points_and_can_drop_the_tier():
    world = build_world()
    sale = buy(world.card, 60000)
    assert Card.objects.get(pk=world.card.pk).tier == world.gold
    refund_purchase(Purchase.objects.get(pk=sale.purchase_id), amount=30000, idempotency_key="rf")
    card = Card.objects.get(pk=world.card.pk)
    assert card.lifetime_points == 300 and card.tier == world.silver


# Adjustments --------------------------------------------------------------------------------------

def test_adjustment_needs_a_reason_and_records_the_actor(django_user_model):
    world = build_world()
    clerk = django_user_model.objects.create_user(username="clerk", password="x")
    with pytest.raises(InvalidRequest):
        adjust_points(world.card, delta=10, reason="  ", actor=clerk, idempotency_key="a-0")
    result = adjust_points(
        world.card, delta=25, reason="Missed scan on receipt 991", actor=clerk, idempotency_key="a-1"
    )
    entry = LedgerEntry.objects.get(pk=result.entry_id)
    assert (entry.delta, entry.actor, entry.reason, result.balance) == (25, clerk, "Missed scan on receipt 991", 25)
    with pytest.raises(InsufficientPoints):
        adjust_points(world.card, delta=-26, reason="Correction", actor=clerk, idempotency_key="a-2")
    assert adjust_points(world.card, delta=-25, reason="Correction", actor=clerk, idempotency_key="a-3").balance == 0


# Expiry -------------------------------------------------------------------------------------------

def test_unspent_points_expire_at_the_end_of_their_validity_and_spent_ones_do_not():
    world = build_world(points_validity_days=30)
    start = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
    buy(world.card, 20000, occurred_at=start)  # 200 points, expire end of 9 Feb local
    redeem_reward(world.card, world.coffee, idempotency_key="r-1")  # spend 100
    assert expire_points(world.card, now=start + dt.timedelta(days=29)) is None
    expired = expire_points(world.card, now=start + dt.timedelta(days=31))
    assert expired.points_expired == 100 and expired.balance == 0
    assert expire_points(world.card, now=start + dt.timedelta(days=32)) is None


def test_expiry_job_covers_points_from_every_earning_path(django_user_model):
    world = build_world(points_validity_days=10, welcome_bonus=5)
    card = make_card(world.program)  # welcome bonus lot
    buy(card, 1000)  # purchase lot
    adjust_points(card, delta=7, reason="Goodwill", actor=None, idempotency_key="g-1")  # adjustment lot
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=12)
    results = {r.card_id: r for r in expire_due_points(now=later)}
    assert results[card.pk].points_expired == 22
    assert Card.objects.get(pk=card.pk).balance == 0


def test_program_without_expiry_never_expires_points():
    world = build_world()
    buy(world.card, 1000)
    assert expire_due_points(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)) == []
