"""Expiry warnings and the forecast behind them.

A Paris café whose points are valid 30 days and whose customers are warned 14 days ahead. A purchase at
10:00 Paris time on 5 January earns points that expire at the end of 4 February, Paris time: midnight
between 4 and 5 February, 23:00 UTC on 4 February.
"""
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from config.celery import app as celery_app
from merchants.models import Program
from tests.factories import build_world, make_card
from tests.wallet.helpers import buy, ledger_sum
from wallet.errors import InsufficientPoints, RedemptionNotCancellable, RefundExceedsPurchase
from wallet.expiry_forecast import expiring_by_card, forecast_cards
from wallet.ledger import expirable_points_now
from wallet.models import Card, DomainEvent, ExpiryWarning, LedgerEntry, Purchase, Redemption
from wallet.services import (
    adjust_points,
    cancel_redemption,
    expire_due_points,
    expire_points,
    leave_program,
    redeem_reward,
    refund_purchase,
)
from wallet.services.expiry_warnings import _warn_card, warn_expiring_points
from wallet.tasks import warn_expiring_points_task

EARNED_AT = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # 10:00 in Paris
EXPIRES_AT = dt.datetime(2026, 2, 4, 23, 0, tzinfo=dt.UTC)  # midnight ending 4 February in Paris
TEN_DAYS_BEFORE = EXPIRES_AT - dt.timedelta(days=10)


def cafe(**program):
    return build_world(**{"points_validity_days": 30, "expiry_warning_days": 14, **program})


def expiring_events(card=None):
    events = DomainEvent.objects.filter(event_type="wallet.points.expiring")
    return events.filter(card_id=card.pk) if card else events


# Warnings ----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_lot_expiring_in_ten_days_is_warned_once_with_its_points_and_local_date():
    world = cafe()
    buy(world.card, 15000, occurred_at=EARNED_AT)  # 150 points, expiring end of 4 Feb Paris
    redeem_reward(world.card, world.coffee, idempotency_key="r1", occurred_at=EARNED_AT)  # spends 100 of them

    results = warn_expiring_points(now=TEN_DAYS_BEFORE)

    assert [(r.card_id, r.points, r.expires_at, r.expires_on) for r in results] == [
        (world.card.pk, 50, EXPIRES_AT, dt.date(2026, 2, 4))
    ]
    warning = ExpiryWarning.objects.get(card=world.card)
    assert (warning.points, warning.expires_at) == (50, EXPIRES_AT)
    event = expiring_events(world.card).get()
    assert event.merchant_id == world.merchant.pk and event.customer_id == world.customer.pk
    assert event.occurred_at == TEN_DAYS_BEFORE
    assert event.payload == {
        "card_number": world.card.number,
        "program_id": world.program.pk,
        "points": 50,
        "expires_at": "2026-02-04T23:00:00+00:00",
        "expires_on": "2026-02-04",
        "time_zone": "Europe/Paris",
        "balance": 50,
    }

    assert warn_expiring_points(now=TEN_DAYS_BEFORE) == []
    assert warn_expiring_points(now=TEN_DAYS_BEFORE + dt.timedelta(hours=1)) == []
    assert ExpiryWarning.objects.count() == 1 and expiring_events().count() == 1


@pytest.mark.django_db
def test_no_warning_before_the_window_opens_and_one_as_soon_as_it_does():
    world = cafe()
    buy(world.card, 10000, occurred_at=EARNED_AT)
    assert warn_expiring_points(now=EXPIRES_AT - dt.timedelta(days=14, seconds=1)) == []
    assert [r.points for r in warn_expiring_points(now=EXPIRES_AT - dt.timedelta(days=14))] == [100]


@pytest.mark.django_db
def test_a_lot_spent_before_the_warning_is_not_warned():
    world = cafe()
    buy(world.card, 10000, occurred_at=EARNED_AT)  # 100 points expiring on 4 Feb
    buy(world.card, 10000, occurred_at=EARNED_AT + dt.timedelta(days=20))  # 100 more, expiring on 24 Feb
    redeem_reward(world.card, world.coffee, idempotency_key="r1", occurred_at=EARNED_AT + dt.timedelta(days=21))

    # The coffee spent the earliest-expiring points: the card still holds 100, none of them due on 4 Feb.
    assert warn_expiring_points(now=TEN_DAYS_BEFORE) == []
    assert Card.objects.get(pk=world.card.pk).balance == 100
    assert not ExpiryWarning.objects.exists() and not expiring_events().exists()


@pytest.mark.django_db
def test_a_spent_lot_does_not_hide_a_later_unspent_one_inside_the_window():
    world = cafe()
    buy(world.card, 10000, occurred_at=EARNED_AT)  # 100 expiring end of 4 Feb
    buy(world.card, 4000, occurred_at=EARNED_AT + dt.timedelta(days=3))  # 40 expiring end of 7 Feb
    redeem_reward(world.card, world.coffee, idempotency_key="r1", occurred_at=EARNED_AT + dt.timedelta(days=8))

    [result] = warn_expiring_points(now=TEN_DAYS_BEFORE)
    assert (result.points, result.expires_on) == (40, dt.date(2026, 2, 7))


@pytest.mark.django_db
def test_two_expiry_dates_in_the_window_are_warned_one_after_the_other():
    world = cafe()
    buy(world.card, 3000, occurred_at=EARNED_AT)  # 30 expiring end of 4 Feb
    buy(world.card, 2000, occurred_at=EARNED_AT + dt.timedelta(days=3))  # 20 expiring end of 7 Feb

    [first] = warn_expiring_points(now=TEN_DAYS_BEFORE)
    assert (first.points, first.expires_on) == (30, dt.date(2026, 2, 4))
    expire_due_points(now=EXPIRES_AT)
    [second] = warn_expiring_points(now=EXPIRES_AT + dt.timedelta(hours=1))
    assert (second.points, second.expires_on) == (20, dt.date(2026, 2, 7))


@pytest.mark.django_db
@pytest.mark.parametrize("program", [
    {"points_validity_days": None, "expiry_warning_days": 14},
    {"points_validity_days": 30, "expiry_warning_days": None},
])
def test_no_warning_when_points_never_expire_or_the_program_does_not_warn(program):
    world = build_world(**program)
    buy(world.card, 10000, occurred_at=EARNED_AT)
    assert warn_expiring_points(now=TEN_DAYS_BEFORE) == []
    assert not ExpiryWarning.objects.exists() and not expiring_events().exists()


@pytest.mark.django_db
def test_a_closed_card_is_not_warned():
    world = cafe()
    buy(world.card, 10000, occurred_at=EARNED_AT)
    leave_program(world.card)
    assert warn_expiring_points(now=TEN_DAYS_BEFORE) == []


@pytest.mark.django_db
def test_the_database_refuses_a_second_warning_for_the_same_card_and_date():
    """What decides a race between two workers: the unique constraint, whatever either one read first."""
    world = cafe()
    buy(world.card, 10000, occurred_at=EARNED_AT)
    [forecast] = forecast_cards(now=TEN_DAYS_BEFORE, until=EXPIRES_AT, pk=world.card.pk)
    card = Card.objects.select_related("wallet").get(pk=world.card.pk)

    assert _warn_card(world.program, card, forecast, EXPIRES_AT, 100, TEN_DAYS_BEFORE) is not None
    assert _warn_card(world.program, card, forecast, EXPIRES_AT, 100, TEN_DAYS_BEFORE) is None
    assert ExpiryWarning.objects.count() == 1 and expiring_events().count() == 1


@pytest.mark.django_db
def test_after_the_warning_the_expiry_job_expires_the_lot_at_the_end_of_the_local_day():
    world = cafe()
    buy(world.card, 15000, occurred_at=EARNED_AT)
    redeem_reward(world.card, world.coffee, idempotency_key="r1", occurred_at=EARNED_AT)
    [warning] = warn_expiring_points(now=TEN_DAYS_BEFORE)

    # 23:59 on 4 February in Paris: still the points' last day.
    assert expire_due_points(now=EXPIRES_AT - dt.timedelta(minutes=1)) == []
    [expired] = expire_due_points(now=EXPIRES_AT)
    assert expired.points_expired == warning.points == 50

    card = Card.objects.get(pk=world.card.pk)
    entry = LedgerEntry.objects.get(pk=expired.entry_id)
    assert (entry.kind, entry.delta, entry.occurred_at) == (LedgerEntry.Kind.EXPIRE, -50, EXPIRES_AT)
    assert card.balance == 0 == ledger_sum(card)


# The beat task ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_hourly_beat_task_is_scheduled_registered_and_warns():
    schedule = settings.CELERY_BEAT_SCHEDULE["warn-expiring-points"]
    assert schedule == {"task": "wallet.tasks.warn_expiring_points_task", "schedule": 3600.0}
    registered = celery_app.tasks[schedule["task"]]  # what beat's message names, found by the worker

    world = cafe()
    buy(world.card, 10000, occurred_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=20))  # expires in ~11 days
    assert registered.apply().get() == 1
    assert warn_expiring_points_task() == 0
    assert ExpiryWarning.objects.get(card=world.card).points == 100


# Concurrency (PostgreSQL) ------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_warning_at_once_warn_each_card_exactly_once():
    world = cafe()
    cards = [world.card, *(make_card(world.program) for _ in range(14))]
    for card in cards:
        buy(card, 10000, occurred_at=EARNED_AT)
    barrier = threading.Barrier(2)

    def worker(_index):
        try:
            barrier.wait(timeout=30)
            return warn_expiring_points(now=TEN_DAYS_BEFORE)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(worker, range(2))

    warned = sorted(result.card_id for result in [*first, *second])
    assert warned == sorted(card.pk for card in cards), "every card warned by exactly one of the two"
    assert ExpiryWarning.objects.count() == len(cards)
    assert expiring_events().count() == len(cards)
    assert sorted(expiring_events().values_list("card_id", flat=True)) == warned


# The forecast agrees with the expiry job --------------------------------------------------------

@pytest.mark.django_db
def test_forecast_per_card_counts_the_earliest_lots_and_nothing_on_a_card_in_debt():
    world = cafe(refund_policy=Program.RefundPolicy.ALLOW_NEGATIVE)
    other = make_card(world.program)
    buy(world.card, 10000, occurred_at=EARNED_AT)  # 100 expiring 4 Feb
    buy(world.card, 5000, occurred_at=EARNED_AT + dt.timedelta(days=10))  # 50 expiring 14 Feb
    purchase = buy(other, 15000, occurred_at=EARNED_AT)  # 150 expiring 4 Feb ...
    redeem_reward(other, world.coffee, idempotency_key="r1", occurred_at=EARNED_AT)
    refund_purchase(Purchase.objects.get(pk=purchase.purchase_id), amount=None, idempotency_key="f1")  # ... -100
    assert Card.objects.get(pk=other.pk).balance == -100

    horizons = {"day_before": EXPIRES_AT - dt.timedelta(seconds=1), "at": EXPIRES_AT,
                "later": EXPIRES_AT + dt.timedelta(days=30)}
    rows = expiring_by_card(horizons, program=world.program)
    assert {row["card_id"]: (row["day_before"], row["at"], row["later"]) for row in rows} == {
        world.card.pk: (0, 100, 150),
        other.pk: (0, 0, 0),  # 150 earned, 100 spent, the 150 refunded: nothing left to expire
    }


def forecasts_at(card, moments):
    """(per-card SQL forecast, Python forecast, the expiry job's own rule) at each moment."""
    now = moments[0]
    [forecast] = forecast_cards(now=now, until=moments[-1], pk=card.pk)
    [row] = expiring_by_card({f"t{i}": moment for i, moment in enumerate(moments)}, pk=card.pk)
    card = Card.objects.get(pk=card.pk)
    return [(row[f"t{i}"], forecast.expiring_by(moment), expirable_points_now(card, moment))
            for i, moment in enumerate(moments)]


@pytest.mark.django_db
def test_a_refund_shrinks_its_own_later_lot_not_the_one_expiring_first():
    world = cafe()
    buy(world.card, 10000, occurred_at=EARNED_AT)  # 100 expiring end of 4 Feb
    later = buy(world.card, 20000, occurred_at=EARNED_AT + dt.timedelta(days=5))  # 200 expiring end of 9 Feb
    refund_purchase(Purchase.objects.get(pk=later.purchase_id), amount=5000, idempotency_key="f1")  # -50 of those

    second_expiry = EXPIRES_AT + dt.timedelta(days=5)
    assert forecasts_at(world.card, [TEN_DAYS_BEFORE, EXPIRES_AT, second_expiry]) == [
        (0, 0, 0), (100, 100, 100), (250, 250, 250),
    ]
    [warning] = warn_expiring_points(now=TEN_DAYS_BEFORE)
    assert warning.points == 100


@pytest.mark.django_db
def test_a_cancelled_redemption_gives_back_points_that_expire_with_their_lot():
    world = cafe()
    buy(world.card, 15000, occurred_at=EARNED_AT)  # 150 expiring end of 4 Feb
    coupon = redeem_reward(world.card, world.coffee, idempotency_key="r1", occurred_at=EARNED_AT)
    cancel_redemption(Redemption.objects.get(pk=coupon.redemption_id), idempotency_key="c1")

    assert forecasts_at(world.card, [TEN_DAYS_BEFORE, EXPIRES_AT]) == [(0, 0, 0), (150, 150, 150)]
    assert warn_expiring_points(now=TEN_DAYS_BEFORE)[0].points == 150


operations = st.lists(
    st.one_of(
        st.tuples(st.just("purchase"), st.integers(min_value=100, max_value=40_000)),
        st.tuples(st.just("redeem"), st.just(0)),
        st.tuples(st.just("refund"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("adjust"), st.integers(min_value=-150, max_value=150).filter(bool)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=12)),
        st.tuples(st.just("expire"), st.just(0)),
    ),
    min_size=1,
    max_size=18,
)


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class ForecastAgreesWithExpiryTests(TestCase):
    """Whatever happened on a card, the forecast for a future time T equals what the expiry job's own
    rule (expirable_points_now) says is due at T, and expiring then really removes that much."""

    @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=operations, policy=st.sampled_from(list(Program.RefundPolicy.values)))
    def test_forecast_equals_expirable_points_at_every_future_time(self, steps, policy):
        world = build_world(points_validity_days=10, refund_policy=policy)
        card, now = world.card, EARNED_AT
        buy(card, 12000, "first", key="first", occurred_at=now)
        for number, (kind, value) in enumerate(steps):
            key = f"step-{number}"
            try:
                if kind == "purchase":
                    buy(card, value, key, key=key, occurred_at=now)
                elif kind == "redeem":
                    redeem_reward(card, world.coffee, idempotency_key=key, occurred_at=now)
                elif kind == "refund" and (purchases := list(Purchase.objects.filter(card=card).order_by("pk"))):
                    purchase = purchases[value % len(purchases)]
                    refund_purchase(purchase, amount=max(1, purchase.amount // 3), idempotency_key=key,
                                    occurred_at=now)
                elif kind == "cancel" and (redemptions := list(Redemption.objects.filter(card=card).order_by("pk"))):
                    cancel_redemption(redemptions[value % len(redemptions)], idempotency_key=key, occurred_at=now)
                elif kind == "adjust":
                    adjust_points(card, delta=value, reason="test", actor=None, idempotency_key=key, occurred_at=now)
                elif kind == "wait":
                    now += dt.timedelta(days=value)
                elif kind == "expire":
                    expire_points(card, now=now)
            except (InsufficientPoints, RefundExceedsPurchase, RedemptionNotCancellable):
                pass

        card = Card.objects.get(pk=card.pk)
        until = now + dt.timedelta(days=40)
        times = [now, *sorted({e for e in card.entries.values_list("expires_at", flat=True) if e and e > now}), until]
        times += [moment - dt.timedelta(seconds=1) for moment in times[1:]]
        [forecast] = forecast_cards(now=now, until=until, pk=card.pk)
        horizons = {f"t{index}": moment for index, moment in enumerate(times)}
        [row] = expiring_by_card(horizons, pk=card.pk)
        for index, moment in enumerate(times):
            expected = expirable_points_now(card, moment)
            self.assertEqual(forecast.expiring_by(moment), expected, f"forecast at {moment}")
            self.assertEqual(row[f"t{index}"], expected, f"SQL forecast at {moment}")

        # And expiring at the card's next expiry removes exactly what was forecast to expire then.
        next_expiry = forecast.next_expiry()
        if next_expiry is not None:
            expire_points(card, now=now)
            result = expire_points(card, now=next_expiry[0])
            self.assertEqual(result.points_expired, next_expiry[1])
