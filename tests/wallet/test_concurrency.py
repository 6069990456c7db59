"""Points under real concurrency, on PostgreSQL: no lost, doubled or overdrawn points, and a reward
that costs the whole balance is redeemed once however many requests race for it.

Real threads, each with its own database connection, released together by a barrier so the
requests truly overlap; TransactionTestCase semantics (django_db(transaction=True)) so every
thread commits for real instead of hiding inside one test transaction.
"""

import pytest
from django.core.management import call_command

from tests.api.conftest import client_for
from tests.concurrency import run_together
from tests.factories import build_world
from tests.wallet.helpers import buy, ledger_sum
from wallet.errors import InsufficientPoints, RewardUnavailable
from wallet.models import Card, IdempotencyRecord, LedgerEntry, Purchase, Redemption
from wallet.services import redeem_reward, refund_purchase

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 40
WHOLE_BALANCE_THREADS = 50


def test_forty_threads_redeeming_a_reward_the_card_can_afford_three_times():
    world = build_world()
    buy(world.card, 30000)  # 300 points; the coffee costs 100

    def redeem(index):
        try:
            redeem_reward(world.card, world.coffee, idempotency_key=f"redeem-{index}")
            return "redeemed"
        except InsufficientPoints as refusal:
            assert refusal.code == "insufficient_points"
            return "insufficient_points"

    outcomes = run_together(THREADS, redeem)
    assert outcomes.count("redeemed") == 3
    assert outcomes.count("insufficient_points") == THREADS - 3
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == 0 == ledger_sum(card)
    assert Redemption.objects.filter(card=card).count() == 3
    assert not card.entries.filter(balance_after__lt=0).exists()
    call_command("check_ledger")


def test_fifty_threads_redeeming_a_reward_that_costs_the_whole_balance_redeem_it_once():
    world = build_world()
    buy(world.card, 10000)  # 100 points: exactly the coffee, so the first redemption spends everything

    def redeem(index):
        try:
            redeem_reward(world.card, world.coffee, idempotency_key=f"whole-balance-{index}")
            return "redeemed"
        except (InsufficientPoints, RewardUnavailable) as refusal:
            return refusal.code

    outcomes = run_together(WHOLE_BALANCE_THREADS, redeem)
    assert outcomes.count("redeemed") == 1
    assert outcomes.count("insufficient_points") == WHOLE_BALANCE_THREADS - 1
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == 0 == ledger_sum(card)
    assert card.entries.filter(kind=LedgerEntry.Kind.REDEEM).count() == 1
    assert Redemption.objects.filter(card=card).count() == 1
    # A refusal is not a stored result: only the one redemption holds an idempotency record.
    assert IdempotencyRecord.objects.filter(key__startswith="whole-balance-").count() == 1
    call_command("check_ledger")


def test_fifty_customer_app_requests_for_the_whole_balance_get_one_coupon_and_forty_nine_409s():
    """The same race through the customer API, as fifty taps from the app would arrive."""
    world = build_world()
    buy(world.card, 10000)
    url = f"/api/v1/cards/{world.card.pk}/redemptions/"

    def tap(index):
        response = client_for(world.customer.user).post(
            url, {"reward_id": world.coffee.pk}, format="json", HTTP_IDEMPOTENCY_KEY=f"tap-{index}"
        )
        return response.status_code, response.json()

    answers = run_together(WHOLE_BALANCE_THREADS, tap)
    won = [body for status, body in answers if status == 201]
    refused = [body for status, body in answers if status != 201]
    assert len(won) == 1 and won[0]["balance"] == 0
    assert len(refused) == WHOLE_BALANCE_THREADS - 1
    assert {status for status, _ in answers if status != 201} == {409}
    for body in refused:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
        assert body["error"]["code"] == "insufficient_points"
        assert body["error"]["fields"] == {"balance": ["0"], "points_cost": ["100"]}
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == 0 == ledger_sum(card)
    assert Redemption.objects.filter(card=card).count() == 1
    call_command("check_ledger")


def test_forty_threads_sending_the_same_purchase_with_the_same_key():
    world = build_world()
    results = run_together(THREADS, lambda index: buy(world.card, 4200, "till-7-sale-99", key="pos-key-1"))
    assert len(set(results)) == 1, "every caller gets the same result"
    assert sum(1 for result in results if not result.replayed) == 1
    assert LedgerEntry.objects.filter(card=world.card, kind=LedgerEntry.Kind.EARN).count() == 1
    assert Purchase.objects.filter(external_id="till-7-sale-99").count() == 1
    assert IdempotencyRecord.objects.filter(key="pos-key-1").count() == 1
    assert Card.objects.get(pk=world.card.pk).balance == 42
    call_command("check_ledger")


def test_concurrent_purchases_on_one_card_lose_no_points():
    world = build_world()
    run_together(20, lambda index: buy(world.card, 1000 + index * 100, f"sale-{index}"))
    expected = sum(10 + index for index in range(20))
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == expected == ledger_sum(card)


def test_concurrent_refund_and_redeem_neither_create_nor_lose_points():
    world = build_world()
    sale = buy(world.card, 10000)  # 100 points
    purchase = Purchase.objects.get(pk=sale.purchase_id)

    def act(index):
        if index % 2:
            return refund_purchase(purchase, amount=None, idempotency_key="refund-all")
        try:
            return redeem_reward(world.card, world.coffee, idempotency_key=f"redeem-{index}")
        except InsufficientPoints:
            return None

    run_together(10, act)
    card = Card.objects.get(pk=world.card.pk)
    redeemed = Redemption.objects.filter(card=card).count()
    assert redeemed <= 1
    assert card.balance == 100 - 100 - 100 * redeemed == ledger_sum(card)
    call_command("check_ledger")
