"""Acceptance: a merchant's subscription decides whether its customers earn, and it shows at the counter.

Stripe's events go through the real webhook; the till calls the real counter API with its device key.
While the subscription is cancelled (or past due beyond the grace days) a sale answers 403
`earning_paused` and writes nothing, the points customers already hold can still be redeemed, and a
sale earns again as soon as the subscription is active. POS webhooks that arrive meanwhile are kept
as failed deliveries, with the reason, to replay once the merchant pays.
"""
import base64
import datetime as dt
import json
import time

import pytest
from django.utils import timezone

from core.standard_webhooks import sign
from pos_integration.models import WebhookDelivery
from pos_integration.processing import process_delivery
from tests.billing.helpers import event, post_event, start_subscribing, subscription
from tests.pos.helpers import as_cashier, make_cashier, till
from tests.wallet.helpers import buy, ledger_sum, written_rows
from wallet.models import Card
from wallet.passes.tokens import issue_token

pytestmark = pytest.mark.django_db

POS_SECRET = "whsec_" + base64.b64encode(b"billing pos webhook test key 32!").decode()


@pytest.fixture
def counter(world, stripe_billing, plan, client, settings):
    """A café whose customer holds 250 points, a till, a cashier, and a linked Stripe customer."""
    settings.TESSERA_BILLING_ENABLED = False
    buy(world.card, 25000, "before-billing")  # earned before this Tessera enforced billing
    settings.TESSERA_BILLING_ENABLED = True
    world.customer_id = start_subscribing(world.merchant, plan)
    world.till = till(world)
    world.cashier = make_cashier(world.merchant)
    world.stripe = lambda status, sub_id="sub_1QbTesseraStarter", created=None: post_event(client, event(
        f"customer.subscription.{'deleted' if status == 'canceled' else 'updated'}",
        subscription(customer=world.customer_id, status=status, sub_id=sub_id), created=created))
    return world


def sale(world, external_id: str, amount: int = 1000):
    body = {"code": world.card.number, "external_id": external_id, "amount": amount, "currency": "EUR"}
    return world.till.post("/api/pos/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"key-{external_id}")


def redeem(world, key: str):
    body = {"code": issue_token(world.card), "reward_id": world.coffee.pk}
    return world.till.post("/api/pos/v1/redemptions/", body, format="json", HTTP_IDEMPOTENCY_KEY=key,
                           **as_cashier(world.cashier))


def balance(world) -> int:
    return Card.objects.get(pk=world.card.pk).balance


def assert_paused(response, merchant_name: str):
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "earning_paused"
    assert merchant_name in error["message"] and "can still redeem" in error["message"]


def test_a_cancelled_merchant_earns_nothing_but_redeems_and_earns_again_once_active(counter):
    assert counter.stripe("active").status_code == 200
    assert sale(counter, "R-1").json()["points_earned"] == 10
    assert balance(counter) == 260

    counter.stripe("canceled")
    rows = written_rows()
    refused = sale(counter, "R-2")
    assert_paused(refused, counter.merchant.name)
    assert "cancelled its Tessera subscription" in refused.json()["error"]["message"]
    assert written_rows() == rows and balance(counter) == 260

    redeemed = redeem(counter, "redeem-while-paused")
    assert redeemed.status_code == 201, redeemed.content
    assert redeemed.json()["balance"] == 160

    counter.stripe("active", sub_id="sub_1QbSubscribedAgain")  # a new subscription through Checkout
    again = sale(counter, "R-2")  # the till retries the same sale with the same key
    assert again.status_code == 201 and again.json()["points_earned"] == 10
    assert balance(counter) == 170 == ledger_sum(Card.objects.get(pk=counter.card.pk))


def test_past_due_earns_through_the_grace_days_then_pauses_until_paid(counter, monkeypatch):
    counter.stripe("past_due")
    assert sale(counter, "R-10").status_code == 201  # Stripe is retrying the card

    later = timezone.now() + dt.timedelta(days=7, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)  # the clock moves past the grace period
    assert_paused(sale(counter, "R-11"), counter.merchant.name)
    assert redeem(counter, "redeem-overdue").status_code == 201

    counter.stripe("active")  # the retried payment went through
    assert sale(counter, "R-11").status_code == 201


def test_a_merchant_that_never_subscribed_is_paused_once_billing_is_enforced(counter):
    assert_paused(sale(counter, "R-20"), counter.merchant.name)


def test_with_billing_disabled_earning_never_pauses(counter, settings):
    counter.stripe("canceled")
    settings.TESSERA_BILLING_ENABLED = False
    response = sale(counter, "R-30")
    assert response.status_code == 201 and response.json()["points_earned"] == 10


def test_a_pos_webhook_sale_while_paused_is_kept_as_failed_and_earns_when_replayed(
    counter, make_connection, post_webhook
):
    connection = make_connection(counter, "generic", {"signing_secret": POS_SECRET})
    counter.stripe("canceled")
    body = json.dumps({"type": "purchase.completed", "timestamp": "2025-03-14T08:30:01Z", "data": {
        "id": "pos-sale-1", "amount": 4200, "currency": "EUR", "occurred_at": "2025-03-14T09:30:00+01:00",
        "customer": {"card_number": counter.card.number},
    }}).encode()

    accepted = post_webhook(connection, body, sign(POS_SECRET, "msg_billing_1", int(time.time()), body))

    assert accepted.status_code == 200  # the POS is told we have it; it must not resend for ever
    delivery = WebhookDelivery.objects.get(connection=connection)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "Earning points is paused" in delivery.error and balance(counter) == 250

    counter.stripe("active", sub_id="sub_1QbSubscribedAgain")
    replayed = process_delivery(delivery.pk, replay=True)
    assert replayed.status == WebhookDelivery.Status.PROCESSED and balance(counter) == 292
