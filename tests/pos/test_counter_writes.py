"""Redeeming, refunding and adjusting at the counter: a cashier's PIN, a live token or a coupon,
each write once, each recorded with the device and the cashier."""
import datetime as dt

import pytest

from pos_integration.models import CounterAction
from tests.factories import build_world
from tests.pos.helpers import as_cashier, make_cashier, till
from tests.wallet.helpers import buy, ledger_sum, written_rows
from wallet.models import Card, LedgerEntry, Redemption
from wallet.passes.tokens import issue_token
from wallet.services import redeem_reward

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    world = build_world()
    world.cashier = make_cashier(world.merchant)
    buy(world.card, 25000, "R-100")  # 250 points
    world.client = till(world)
    return world


def redeem(world, code, key="redeem-1", reward=None, cashier=True):
    body = {"code": code, "reward_id": (reward or world.coffee).pk}
    headers = as_cashier(world.cashier) if cashier else {}
    return world.client.post("/api/pos/v1/redemptions/", body, format="json", HTTP_IDEMPOTENCY_KEY=key, **headers)


def balance(world) -> int:
    return Card.objects.get(pk=world.card.pk).balance


def test_a_fresh_token_redeems_once_and_a_replay_returns_the_same_answer(shop):
    token = issue_token(shop.card)
    first = redeem(shop, token)
    assert first.status_code == 201, first.content
    assert first.json()["points"] == 100 and first.json()["balance"] == 150 and first.json()["reward"] == "Coffee"
    rows = written_rows()
    again = redeem(shop, token)
    assert again.status_code == 201 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert written_rows() == rows and balance(shop) == 150
    redemption = Redemption.objects.get(pk=first.json()["redemption_id"])
    assert redemption.status == Redemption.Status.USED  # handed over at the till
    action = CounterAction.objects.get(redemption=redemption)
    assert action.cashier == shop.cashier and action.device.name == "Till" and action.kind == "redeem"
    assert LedgerEntry.objects.get(redemption=redemption).actor == shop.cashier.user


def test_the_same_token_cannot_redeem_twice_under_another_key(shop):
    token = issue_token(shop.card)
    assert redeem(shop, token, key="a").status_code == 201
    rows = written_rows()
    second = redeem(shop, token, key="b")
    assert second.status_code == 409 and second.json()["error"]["code"] == "token_already_spent"
    assert written_rows() == rows and balance(shop) == 150


def test_a_static_card_number_or_an_expired_token_cannot_redeem(shop):
    rows = written_rows()
    by_number = redeem(shop, shop.card.number)
    assert by_number.status_code == 403 and by_number.json()["error"]["code"] == "customer_presence_required"
    stale = issue_token(shop.card, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    expired = redeem(shop, stale)
    assert expired.status_code == 400 and expired.json()["error"]["fields"]["reason"] == ["expired"]
    assert written_rows() == rows and balance(shop) == 250


def test_redeeming_needs_the_cashiers_pin(shop):
    rows = written_rows()
    assert redeem(shop, issue_token(shop.card), cashier=False).status_code == 403
    wrong = shop.client.post("/api/pos/v1/redemptions/", {"code": issue_token(shop.card), "reward_id": shop.coffee.pk},
                             format="json", HTTP_IDEMPOTENCY_KEY="x", **as_cashier(shop.cashier, "1357"))
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "cashier_pin_invalid"
    assert written_rows() == rows


def test_a_coupon_from_the_app_is_used_once_at_the_counter(shop):
    coupon = redeem_reward(shop.card, shop.coffee, idempotency_key="app-1")
    first = shop.client.post("/api/pos/v1/redemptions/", {"code": coupon.coupon_code}, format="json",
                             HTTP_IDEMPOTENCY_KEY="use-1", **as_cashier(shop.cashier))
    assert first.status_code == 201 and first.json()["balance"] == 150
    again = shop.client.post("/api/pos/v1/redemptions/", {"code": coupon.coupon_code}, format="json",
                             HTTP_IDEMPOTENCY_KEY="use-1", **as_cashier(shop.cashier))
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    other_key = shop.client.post("/api/pos/v1/redemptions/", {"code": coupon.coupon_code}, format="json",
                                 HTTP_IDEMPOTENCY_KEY="use-2", **as_cashier(shop.cashier))
    assert other_key.status_code == 409 and other_key.json()["error"]["code"] == "coupon_not_usable"
    assert CounterAction.objects.filter(kind="coupon_use").count() == 1


def refund(world, external_id, amount=None, key="refund-1"):
    body = {"external_id": external_id} | ({"amount": amount} if amount else {})
    return world.client.post("/api/pos/v1/refunds/", body, format="json", HTTP_IDEMPOTENCY_KEY=key,
                             **as_cashier(world.cashier))


def test_a_refund_by_the_sales_id_takes_back_its_points_pro_rata_once(shop):
    partial = refund(shop, "R-100", 10000, key="r1")
    assert partial.status_code == 201, partial.content
    assert partial.json() == {"purchase_id": partial.json()["purchase_id"], "refunded_amount": 10000,
                              "points_reversed": 100, "points_returned": 0, "balance": 150}
    assert refund(shop, "R-100", 10000, key="r1").json() == partial.json()
    rest = refund(shop, "R-100", key="r2")
    assert rest.json()["points_reversed"] == 150 and rest.json()["balance"] == 0
    too_much = refund(shop, "R-100", 1, key="r3")
    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "refund_exceeds_purchase"
    assert balance(shop) == ledger_sum(shop.card) == 0
    assert CounterAction.objects.filter(kind="refund", cashier=shop.cashier).count() == 2


def test_an_adjustment_needs_a_reason_and_records_the_cashier(shop):
    response = shop.client.post("/api/pos/v1/adjustments/", {"code": shop.card.number, "delta": 20,
                                "reason": "Stamp card from before the app"}, format="json",
                                HTTP_IDEMPOTENCY_KEY="adj-1", **as_cashier(shop.cashier))
    assert response.status_code == 201 and response.json()["balance"] == 270
    entry = LedgerEntry.objects.get(pk=response.json()["entry_id"])
    assert entry.reason == "Stamp card from before the app" and entry.actor == shop.cashier.user
    assert entry.counter_actions.get().cashier == shop.cashier
    no_reason = shop.client.post("/api/pos/v1/adjustments/", {"code": shop.card.number, "delta": 20},
                                 format="json", HTTP_IDEMPOTENCY_KEY="adj-2", **as_cashier(shop.cashier))
    assert no_reason.status_code == 400


def test_a_device_of_another_merchant_cannot_touch_this_card(shop):
    theirs = build_world()
    theirs.cashier = make_cashier(theirs.merchant, "Kim")
    theirs.client, theirs.coffee = till(theirs), shop.coffee
    coupon = redeem_reward(shop.card, shop.coffee, idempotency_key="app-1").coupon_code
    rows = written_rows()
    headers = {"format": "json", **as_cashier(theirs.cashier)}
    attempts = [
        ("/api/pos/v1/scan/", {"code": shop.card.number}),
        ("/api/pos/v1/purchases/", {"code": shop.card.number, "external_id": "X", "amount": 100, "currency": "EUR"}),
        ("/api/pos/v1/redemptions/", {"code": issue_token(shop.card), "reward_id": shop.coffee.pk}),
        ("/api/pos/v1/redemptions/", {"code": coupon}),
        ("/api/pos/v1/refunds/", {"external_id": "R-100"}),
        ("/api/pos/v1/adjustments/", {"code": shop.card.number, "delta": 5, "reason": "x"}),
    ]
    for path, body in attempts:
        response = theirs.client.post(path, body, HTTP_IDEMPOTENCY_KEY=f"k-{path}-{len(body)}", **headers)
        assert response.status_code == 404, (path, response.content)
    assert written_rows() == rows


def test_a_purchase_with_a_cashier_records_who_rang_it_up(shop):
    response = shop.client.post("/api/pos/v1/purchases/", {"code": shop.card.number, "external_id": "R-2",
                                "amount": 500, "currency": "EUR"}, format="json", HTTP_IDEMPOTENCY_KEY="s",
                                **as_cashier(shop.cashier))
    action = CounterAction.objects.get(purchase_id=response.json()["purchase_id"])
    assert action.cashier == shop.cashier and action.kind == "purchase" and action.ledger_entry is not None
