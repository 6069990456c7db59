"""The hourly expiry sweep looks only at cards whose expirable points can have changed since its last
run: a quiet hour costs a few queries however many cards hold old lots, and nothing due is missed."""
import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import build_world, make_card
from tests.wallet.helpers import buy
from wallet.models import Card, LedgerEntry, Redemption
from wallet.services import cancel_redemption, expire_due_points, redeem_reward

pytestmark = pytest.mark.django_db

LONG_AGO = dt.timedelta(days=40)  # with 30 days of validity: expired ten days ago


def balance(card) -> int:
    return Card.objects.get(pk=card.pk).balance


def test_a_sweep_after_a_quiet_hour_locks_no_card_however_many_hold_an_expired_lot(django_assert_max_num_queries):
    world = build_world(points_validity_days=30)
    cards = [make_card(world.program) for _ in range(20)]
    now = timezone.now()
    for card in cards:
        buy(card, 1000, occurred_at=now - LONG_AGO)  # expired
        buy(card, 1000)  # still valid: the card keeps a balance after the sweep
    first = expire_due_points(now=now + dt.timedelta(hours=1))
    assert len(first) == 20 and {balance(card) for card in cards} == {10}

    with django_assert_max_num_queries(4):  # the mark, the candidates (none), moving the mark
        assert expire_due_points(now=now + dt.timedelta(hours=2)) == []


def test_a_lot_expiring_since_the_last_sweep_expires_on_the_next(world_with_expiry):
    world, now = world_with_expiry
    buy(world.card, 1000, occurred_at=now - dt.timedelta(days=28))  # expires in two or three days
    expires_at = LedgerEntry.objects.get(card=world.card).expires_at
    assert expire_due_points(now=expires_at - dt.timedelta(hours=1)) == []  # the hour before
    [expired] = expire_due_points(now=expires_at + dt.timedelta(hours=1))  # the hour after
    assert expired.card_id == world.card.pk and expired.points_expired == 10


def test_spent_points_that_come_back_after_their_lot_expired_expire_at_the_next_sweep(world_with_expiry):
    world, now = world_with_expiry
    buy(world.card, 10000, occurred_at=now - LONG_AGO)  # 100 points, expired
    buy(world.card, 10000)  # 100 points, valid
    coupon = redeem_reward(world.card, world.coffee, idempotency_key="spend")  # spends the expired lot first
    assert expire_due_points() == []  # nothing left in the expired lot: the mark moves to now
    cancel_redemption(Redemption.objects.get(pk=coupon.redemption_id), idempotency_key="cancel")
    assert balance(world.card) == 200
    [expired] = expire_due_points()  # the 100 returned belong to the expired lot
    assert expired.points_expired == 100 and balance(world.card) == 100


def test_a_late_sale_dated_before_its_expiry_is_expired_at_the_next_sweep(world_with_expiry):
    world, now = world_with_expiry
    buy(world.card, 10000)
    assert expire_due_points() == []
    buy(world.card, 5000, "late-sale", occurred_at=now - LONG_AGO)  # a POS catching up on an old sale
    [expired] = expire_due_points()
    assert expired.points_expired == 50 and balance(world.card) == 100


@pytest.fixture
def world_with_expiry():
    return build_world(points_validity_days=30), timezone.now()
