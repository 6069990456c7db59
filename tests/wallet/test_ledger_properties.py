"""Property-based: random sequences of every ledger operation keep the books straight.

After each step: balance == sum of entries for every card, no redemption overdrew, no expiry took
a balance below zero, and no purchase had more points reversed than it earned. Retrying the last
operation with its key returns the same result and writes nothing.
"""
import datetime as dt

from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from merchants.models import Program, Reward
from tests.factories import build_world, make_customer
from tests.wallet.helpers import buy
from wallet.errors import InsufficientPoints, RedemptionNotCancellable, RefundExceedsPurchase, RewardUnavailable
from wallet.ledger import cards_out_of_balance
from wallet.models import Card, LedgerEntry, Purchase, Redemption
from wallet.services import adjust_points, cancel_redemption, enroll, expire_points, redeem_reward, refund_purchase

operations = st.one_of(
    st.tuples(st.just("enroll")),
    st.tuples(st.just("purchase"), st.integers(min_value=1, max_value=60_000)),
    st.tuples(st.just("redeem"), st.integers(min_value=0, max_value=2)),
    st.tuples(st.just("refund"), st.integers(min_value=0, max_value=30), st.sampled_from([None, 1, 3, 7])),
    st.tuples(st.just("adjust"), st.integers(min_value=-400, max_value=400).filter(bool)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=30)),
    st.tuples(st.just("expire"), st.integers(min_value=0, max_value=45)),
    st.tuples(st.just("retry_last")),
)

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class LedgerPropertyTests(TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        steps=st.lists(operations, min_size=1, max_size=25),
        validity=st.sampled_from([None, 7, 30]),
        policy=st.sampled_from(list(Program.RefundPolicy.values)),
        welcome=st.sampled_from([0, 25]),
    )
    def test_random_operation_sequences_keep_the_ledger_consistent(self, steps, validity, policy, welcome):
        world = build_world(points_validity_days=validity, refund_policy=policy, welcome_bonus=welcome)
        rewards = [world.coffee, Reward.objects.create(program=world.program, name="Cake", points_cost=250),
                   Reward.objects.create(program=world.program, name="Mug", points_cost=40, stock=2)]
        card = world.card
        now = START
        last = None  # (callable that retries the last keyed operation, its first result)
        for number, step in enumerate(steps):
            kind, key = step[0], f"step-{number}"
            if kind == "enroll":
                assert enroll(world.customer, world.program).card.pk == card.pk
                enroll(make_customer(), world.program)
            elif kind == "purchase":
                call = lambda amount=step[1], key=key, at=now: buy(card, amount, key, key=key, occurred_at=at)  # noqa: E731
                last = (call, call())
            elif kind == "redeem":
                call = lambda reward=rewards[step[1]], key=key, at=now: redeem_reward(  # noqa: E731
                    card, reward, idempotency_key=key, occurred_at=at
                )  # refused when the card cannot afford it or the reward (the mug) is sold out
                last = self._attempt(call, (InsufficientPoints, RewardUnavailable), last)
            elif kind == "refund":
                purchases = list(Purchase.objects.filter(card=card).order_by("pk"))
                if purchases:
                    purchase = purchases[step[1] % len(purchases)]
                    remaining = purchase.amount - purchase.refunded_amount
                    amount = None if step[2] is None else max(1, remaining // step[2])
                    call = lambda p=purchase, a=amount, key=key, at=now: refund_purchase(  # noqa: E731
                        p, amount=a, idempotency_key=key, occurred_at=at
                    )
                    last = self._attempt(call, RefundExceedsPurchase, last)
            elif kind == "adjust":
                call = lambda delta=step[1], key=key, at=now: adjust_points(  # noqa: E731
                    card, delta=delta, reason="property test", actor=None, idempotency_key=key, occurred_at=at
                )
                last = self._attempt(call, InsufficientPoints, last)
            elif kind == "cancel":
                redemptions = list(Redemption.objects.filter(card=card).order_by("pk"))
                if redemptions:
                    redemption = redemptions[step[1] % len(redemptions)]
                    call = lambda r=redemption, key=key, at=now: cancel_redemption(  # noqa: E731
                        r, idempotency_key=key, occurred_at=at
                    )
                    last = self._attempt(call, RedemptionNotCancellable, last)
            elif kind == "expire":
                now = now + dt.timedelta(days=step[1])
                expire_points(card, now=now)
            elif kind == "retry_last" and last is not None:
                entries_before = LedgerEntry.objects.count()
                retried = last[0]()
                assert retried == last[1] and retried.replayed
                assert LedgerEntry.objects.count() == entries_before
            self._assert_books_are_straight()

    @staticmethod
    def _attempt(call, refusal, last):
        """Run a keyed operation that may be refused; only a success becomes the retry target."""
        try:
            return (call, call())
        except refusal:
            return last

    def _assert_books_are_straight(self):
        self.assertEqual(cards_out_of_balance(), [])
        for card in Card.objects.all():
            self.assertEqual(card.balance, sum(card.entries.values_list("delta", flat=True)))
        self.assertFalse(LedgerEntry.objects.filter(kind="redeem", balance_after__lt=0).exists(), "overdrawn")
        self.assertFalse(LedgerEntry.objects.filter(kind="expire", balance_after__lt=0).exists())
        for purchase in Purchase.objects.all():
            reversed_points = -sum(purchase.entries.filter(kind="refund").values_list("delta", flat=True))
            self.assertEqual(reversed_points, purchase.points_reversed)
            self.assertLessEqual(purchase.points_reversed, purchase.points_earned)
