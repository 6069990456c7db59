"""At the counter: scan a card, coupon or pass, and earn on a purchase, only for this merchant."""
import datetime as dt

import pytest
from rest_framework.test import APIClient

from pos_integration.services import register_device, revoke_device
from tests.factories import build_world
from tests.wallet.helpers import buy, written_rows
from wallet.models import Card, LedgerEntry
from wallet.passes.tokens import issue_token
from wallet.services import redeem_reward

pytestmark = pytest.mark.django_db


def till(world) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {register_device(world.store, 'Till').key}")
    return client


@pytest.fixture
def ours():
    world = build_world()
    world.customer.user.first_name = "Dana"
    world.customer.user.last_name = "Secret-Surname"
    world.customer.user.save()
    buy(world.card, 15000)  # 150 points
    return world


def scan(client, code):
    return client.post("/api/pos/v1/scan/", {"code": code}, format="json")


def test_scanning_a_pass_token_a_card_number_or_a_coupon_shows_the_card(ours):
    coupon = redeem_reward(ours.card, ours.coffee, idempotency_key="c1").coupon_code
    client = till(ours)
    for code, method in ((issue_token(ours.card), "token"), (ours.card.number, "card_number"), (coupon, "coupon")):
        response = scan(client, code)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["method"] == method and body["card"]["number"] == ours.card.number
        assert body["card"]["first_name"] == "Dana" and "Secret-Surname" not in response.text
        assert "email" not in response.text
    assert body["coupon"]["code"] == coupon and body["card"]["balance"] == 50


def test_a_device_of_another_merchant_finds_nothing(ours):
    theirs = build_world()
    coupon = redeem_reward(ours.card, ours.coffee, idempotency_key="c1").coupon_code
    client = till(theirs)
    for code in (issue_token(ours.card), ours.card.number, coupon):
        response = scan(client, code)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_stale_token_is_refused_with_its_reason(ours):
    stale = issue_token(ours.card, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    response = scan(till(ours), stale)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "token_rejected", "message": response.json()["error"]["message"], "fields": {"reason": ["expired"]}
    }


def test_a_mistyped_card_number_is_not_found(ours):
    number = ours.card.number
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert scan(till(ours), wrong).status_code == 404


def test_revoked_or_missing_device_key_gets_401(ours):
    issued = register_device(ours.store, "Old till")
    revoke_device(issued.device)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {issued.key}")
    assert scan(client, ours.card.number).status_code == 401
    assert scan(APIClient(), ours.card.number).status_code == 401


def sale(client, code, key="sale-1", **overrides):
    body = {"code": code, "external_id": "R-1001", "amount": 2599, "currency": "EUR", **overrides}
    return client.post("/api/pos/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_purchase_earns_once_and_a_retry_returns_the_same_answer(ours):
    client = till(ours)
    first = sale(client, issue_token(ours.card))
    assert first.status_code == 201 and first.json()["points_earned"] == 25 and first.json()["balance"] == 175
    entries = LedgerEntry.objects.count()
    again = sale(client, ours.card.number)  # the same sale, retried after a timeout, card typed this time
    assert again.status_code == 201 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert LedgerEntry.objects.count() == entries
    assert Card.objects.get(pk=ours.card.pk).balance == 175
    changed = sale(client, ours.card.number, amount=9999)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "overrides", [{"amount": 0}, {"amount": -5}, {"amount": 10**13}, {"currency": "usd"}, {"currency": "USD"},
                  {"tip": 5}]
)
def test_bad_purchases_are_refused_and_write_nothing(ours, overrides):
    client = till(ours)
    before = written_rows()
    response = sale(client, ours.card.number, **overrides)
    assert response.status_code == 400 and "error" in response.json()
    assert written_rows() == before


def test_a_purchase_needs_an_idempotency_key_and_a_card_of_this_merchant(ours):
    client = till(ours)
    response = client.post("/api/pos/v1/purchases/", {"code": ours.card.number, "external_id": "R-1",
                                                      "amount": 100, "currency": "EUR"}, format="json")
    assert response.status_code == 400
    theirs = build_world()
    before = written_rows()
    assert sale(till(theirs), ours.card.number).status_code == 404
    assert written_rows() == before
