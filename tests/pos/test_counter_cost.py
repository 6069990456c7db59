"""What a counter request costs in SQL, and that the cheaper path keeps every guarantee.

The statement budgets are upper bounds: a change that adds a query to the scan or the purchase
fails here and has to say why. The device row is still read on every request, so a revoked key is
refused on the very next one, and `last_used_at` is written at most once a minute per device.
"""
import datetime as dt
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from merchants.models import Reward
from pos_integration.api.counter import ScanResponseSerializer
from pos_integration.models import PosDevice
from pos_integration.services import register_device, revoke_device
from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.idempotency import run_idempotent
from wallet.models import Card, IdempotencyRecord, LedgerEntry, Purchase, Redemption
from wallet.passes.tokens import issue_token
from wallet.services import redeem_reward

pytestmark = pytest.mark.django_db

SCAN_STATEMENTS = 3  # the device, the card with its summary, the rewards it can pay for
PURCHASE_STATEMENTS = 12  # without BEGIN, SAVEPOINT, RELEASE and COMMIT


def _till(world):
    issued = register_device(world.store, "Till")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {issued.key}")
    return client, issued.device


def _purchase(client, world, sale=None):
    sale = sale or f"sale-{uuid.uuid4().hex}"
    return client.post(
        "/api/pos/v1/purchases/",
        {"code": world.card.number, "external_id": sale, "amount": 1234, "currency": world.merchant.currency},
        format="json", HTTP_IDEMPOTENCY_KEY=sale,
    )


def _statements(captured) -> list[str]:
    transaction_control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(transaction_control)]


def test_a_scan_and_a_purchase_stay_within_their_statement_budgets():
    world = build_world()
    client, _device = _till(world)
    assert _purchase(client, world).status_code == 201  # the first request of a device writes last_used_at
    with CaptureQueriesContext(connection) as scan:
        response = client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json")
    assert response.status_code == 200
    assert len(_statements(scan)) <= SCAN_STATEMENTS, "\n".join(_statements(scan))
    with CaptureQueriesContext(connection) as purchase:
        response = _purchase(client, world)
    assert response.status_code == 201
    assert len(_statements(purchase)) <= PURCHASE_STATEMENTS, "\n".join(_statements(purchase))
    assert not any("idempotencyrecord" in sql and sql.startswith("SELECT") for sql in _statements(purchase))


def test_last_used_at_is_written_at_most_once_a_minute_per_device():
    world = build_world()
    client, device = _till(world)
    client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json")
    first = PosDevice.objects.get(pk=device.pk).last_used_at
    assert first is not None
    client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json")
    assert PosDevice.objects.get(pk=device.pk).last_used_at == first
    PosDevice.objects.filter(pk=device.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json")
    assert PosDevice.objects.get(pk=device.pk).last_used_at > first


def test_a_revoked_device_is_refused_on_its_very_next_request():
    world = build_world()
    client, device = _till(world)
    assert client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json").status_code == 200
    revoke_device(device)
    assert client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json").status_code == 401
    before = Purchase.objects.count()
    assert _purchase(client, world).status_code == 401
    assert Purchase.objects.count() == before


def test_a_replayed_purchase_writes_nothing_and_answers_the_same():
    world = build_world()
    client, _device = _till(world)
    first = _purchase(client, world, sale="R-1")
    entries = LedgerEntry.objects.count()
    again = _purchase(client, world, sale="R-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert LedgerEntry.objects.count() == entries


def test_a_key_claimed_earlier_in_the_same_transaction_replays_its_result():
    world = build_world()
    calls = []

    def work():
        calls.append(1)
        return {"n": len(calls)}

    with transaction.atomic():
        first = run_idempotent(merchant_id=world.merchant.pk, key="k", operation="op", request={"a": 1}, work=work)
        second = run_idempotent(merchant_id=world.merchant.pk, key="k", operation="op", request={"a": 1}, work=work)
    assert first == ({"n": 1}, False) and second == ({"n": 1}, True) and calls == [1]
    assert IdempotencyRecord.objects.get(merchant=world.merchant, key="k").result == {"n": 1}


def test_a_failed_work_leaves_the_key_unclaimed_for_a_retry():
    world = build_world()

    def refuse():
        raise ValueError("refused")

    with pytest.raises(ValueError):
        run_idempotent(merchant_id=world.merchant.pk, key="k2", operation="op", request={}, work=refuse)
    assert not IdempotencyRecord.objects.filter(key="k2").exists()
    assert run_idempotent(merchant_id=world.merchant.pk, key="k2", operation="op", request={},
                          work=lambda: {"ok": True}) == ({"ok": True}, False)


def test_the_scan_answer_is_what_its_serializer_renders():
    world = build_world()
    buy(world.card, 50000)
    coupon = redeem_reward(world.card, world.coffee, idempotency_key="c1")
    client, _device = _till(world)
    for code in (world.card.number, issue_token(world.card), coupon.coupon_code):
        body = client.post("/api/pos/v1/scan/", {"code": code}, format="json").json()
        raw = dict(body)
        if body["coupon"] is not None:
            raw["coupon"] = {**body["coupon"], "expires_at": Redemption.objects.get(pk=coupon.redemption_id).expires_at}
        assert ScanResponseSerializer(raw).data == body
    assert body["coupon"]["code"] == coupon.coupon_code and body["card"]["rewards_redeemable"]


def test_the_scan_lists_only_rewards_the_card_can_take_now_cheapest_first():
    world = build_world()
    for name, cost, extra in (("Cake", 50, {}), ("Sold out", 20, {"stock": 0}), ("Retired", 10, {"is_active": False}),
                              ("Too dear", 10_000, {}), ("Last few", 80, {"stock": 3}), ("Also 50", 50, {})):
        Reward.objects.create(program=world.program, name=name, points_cost=cost, **extra)
    Reward.objects.create(program=build_world().program, name="Another merchant's", points_cost=1)
    client, _ = _till(world)

    def shown(balance):
        Card.objects.filter(pk=world.card.pk).update(balance=balance)
        response = client.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json")
        return [(r["name"], r["points_cost"]) for r in response.json()["card"]["rewards_redeemable"]]

    assert shown(150) == [("Cake", 50), ("Also 50", 50), ("Last few", 80), ("Coffee", 100)]
    assert shown(79) == [("Cake", 50), ("Also 50", 50)]
    assert shown(-5) == []  # a card in debt after a refund can take nothing
