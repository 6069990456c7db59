"""A reward handed over on a sale, then that sale refunded: at the till and through a POS webhook
the customer gets the points spent back once, however often the refund is sent."""
import base64
import json
import time
import uuid

import pytest

from core.standard_webhooks import sign
from tests.pos.helpers import as_cashier, make_cashier, till
from tests.wallet.helpers import buy, ledger_sum, written_rows
from wallet.models import Card, Redemption
from wallet.passes.tokens import issue_token
from wallet.services import redeem_reward

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + base64.b64encode(b"refund paid with points test 32b").decode()


@pytest.fixture
def shop(world):
    world.cashier = make_cashier(world.merchant)
    buy(world.card, 25000, "R-100")  # 250 points
    world.client = till(world)
    return world


def post(world, path, body, key):
    return world.client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **as_cashier(world.cashier))


def balance(world) -> int:
    return Card.objects.get(pk=world.card.pk).balance


def test_a_reward_given_on_a_till_sale_comes_back_when_the_sale_is_refunded_once(shop):
    given = post(shop, "/api/pos/v1/redemptions/", {"code": issue_token(shop.card), "reward_id": shop.coffee.pk,
                                                     "external_id": "R-200"}, "give-1")
    assert given.status_code == 201, given.content
    sold = shop.client.post("/api/pos/v1/purchases/", {"code": shop.card.number, "external_id": "R-200",
                            "amount": 1500, "currency": "EUR"}, format="json", HTTP_IDEMPOTENCY_KEY="sale-200")
    assert sold.status_code == 201 and balance(shop) == 250 - 100 + 15

    refunded = post(shop, "/api/pos/v1/refunds/", {"external_id": "R-200"}, "refund-200")
    assert refunded.status_code == 201, refunded.content
    assert refunded.json() | {"purchase_id": 0} == {"purchase_id": 0, "refunded_amount": 1500, "points_reversed": 15,
                                                   "points_returned": 100, "balance": 250}
    rows = written_rows()
    again = post(shop, "/api/pos/v1/refunds/", {"external_id": "R-200"}, "refund-200")
    assert again.json() == refunded.json() and again["Idempotent-Replayed"] == "true"
    twice = post(shop, "/api/pos/v1/refunds/", {"external_id": "R-200"}, "refund-200-again")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "refund_exceeds_purchase"
    assert written_rows() == rows and balance(shop) == 250 == ledger_sum(shop.card)


def test_an_app_coupon_used_on_a_sale_is_returned_pro_rata_and_the_same_key_cannot_name_another_sale(shop):
    coupon = redeem_reward(shop.card, shop.coffee, idempotency_key="app-1")
    used = post(shop, "/api/pos/v1/redemptions/", {"code": coupon.coupon_code, "external_id": "R-300"}, "use-1")
    assert used.status_code == 201
    other_sale = post(shop, "/api/pos/v1/redemptions/", {"code": coupon.coupon_code, "external_id": "R-301"}, "use-1")
    assert other_sale.status_code == 409 and other_sale.json()["error"]["code"] == "idempotency_key_reused"
    assert Redemption.objects.get(pk=coupon.redemption_id).sale_external_id == "R-300"
    buy(shop.card, 2000, "R-300")
    half = post(shop, "/api/pos/v1/refunds/", {"external_id": "R-300", "amount": 1000}, "refund-half")
    assert half.json()["points_returned"] == 50 and half.json()["points_reversed"] == 10
    rest = post(shop, "/api/pos/v1/refunds/", {"external_id": "R-300"}, "refund-rest")
    assert rest.json()["points_returned"] == 50 and rest.json()["balance"] == 250


def test_a_refund_posted_twice_by_the_pos_returns_the_points_spent_once(shop, make_connection, post_webhook):
    connection = make_connection(shop, "generic", {"signing_secret": SECRET})

    def deliver(event_type, data, msg_id):
        body = json.dumps({"type": event_type, "timestamp": "2025-03-14T08:30:01Z", "data": data}).encode()
        return post_webhook(connection, body, sign(SECRET, msg_id, int(time.time()), body))

    given = post(shop, "/api/pos/v1/redemptions/", {"code": issue_token(shop.card), "reward_id": shop.coffee.pk,
                                                     "external_id": "sq-77"}, "give-77")
    assert given.status_code == 201
    sold = {"id": "sq-77", "amount": 3000, "currency": "EUR", "occurred_at": "2025-03-14T09:30:00+01:00",
            "customer": {"card_number": shop.card.number}}
    assert deliver("purchase.completed", sold, "msg_sale").status_code == 200
    assert balance(shop) == 250 - 100 + 30
    refund = {"id": "rf-77", "purchase_id": "sq-77", "currency": "EUR", "occurred_at": "2025-03-14T10:00:00+01:00"}
    for msg_id in ("msg_refund", "msg_refund", f"msg_{uuid.uuid4().hex}"):  # a redelivery, then a resend
        assert deliver("purchase.refunded", refund, msg_id).status_code == 200
    assert Redemption.objects.get(pk=given.json()["redemption_id"]).points_returned == 100
    assert balance(shop) == 250 == ledger_sum(shop.card)
