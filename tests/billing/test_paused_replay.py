"""Acceptance: POS sales refused while a merchant's subscription had lapsed earn once it pays again.

The POS posts its sales through the real webhook URL while earning is paused: each delivery is kept
as failed, marked `earning_paused`. The Stripe event that makes the subscription active again (through
/hooks/stripe/) replays them after its commit, oldest first, and each sale earns once, dated when it
happened. Stripe's retries and later events earn nothing more; other merchants' deliveries, other
failures and deliveries older than the replay window stay as they are.

A refund the POS sent during the lapse, for a sale held then, cannot find its sale: it fails as
`sale_not_seen` and its automatic retries run out. The replay applies the held sales first, then those
refunds, so the customer ends with the points they had, once, whatever Stripe or an admin repeats.
"""
import base64
import datetime as dt
import json
import time

import pytest
from django.utils import timezone

from core.standard_webhooks import sign
from merchants.models import StripeEvent
from pos_integration.models import WebhookDelivery
from pos_integration.processing import (
    HELD_DELIVERIES_MAX_DAYS,
    MAX_AUTOMATIC_ATTEMPTS,
    deliveries_to_retry,
    process_delivery,
    replay_held_deliveries,
)
from tests.billing.helpers import event, post_event, start_subscribing, subscription
from tests.factories import build_world
from tests.wallet.helpers import ledger_sum
from wallet.models import Card, LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

POS_SECRET = "whsec_" + base64.b64encode(b"paused replay pos webhook key 32").decode()
NOW = int(time.time())


@pytest.fixture
def lapsed(world, stripe_billing, plan, client, make_connection, eager_celery):
    """A café whose subscription was active and was cancelled an hour ago, with a signed POS webhook."""
    world.customer_id = start_subscribing(world.merchant, plan)
    stripe(client, world, "active", created=NOW - 3 * 3600)
    stripe(client, world, "canceled", created=NOW - 3600)
    world.connection = make_connection(world, "generic", {"signing_secret": POS_SECRET})
    world.opening_balance = balance(world)
    return world


def stripe(client, world, status: str, *, sub_id="sub_1QbTesseraStarter", created=None, event_id=None):
    """Posts the subscription event and runs what it schedules on commit, as a worker would."""
    stripe_event = event(f"customer.subscription.{'deleted' if status == 'canceled' else 'updated'}",
                         subscription(customer=world.customer_id, status=status, sub_id=sub_id),
                         created=created, event_id=event_id)
    return post_event(client, stripe_event), stripe_event


def pos_sale(post_webhook, connection, card_number: str, sale_id: str, amount: int, occurred_at: dt.datetime,
             currency="EUR") -> WebhookDelivery:
    body = json.dumps({"type": "purchase.completed", "timestamp": occurred_at.isoformat(), "data": {
        "id": sale_id, "amount": amount, "currency": currency, "occurred_at": occurred_at.isoformat(),
        "customer": {"card_number": card_number},
    }}).encode()
    response = post_webhook(connection, body, sign(POS_SECRET, f"msg_{sale_id}", int(time.time()), body))
    assert response.status_code == 200, response.content
    return WebhookDelivery.objects.get(pk=response.json()["delivery"])


def balance(world) -> int:
    return Card.objects.get(pk=world.card.pk).balance


def held(delivery: WebhookDelivery) -> tuple:
    delivery.refresh_from_db()
    return delivery.status, delivery.failure_code, delivery.attempts, delivery.error


@pytest.fixture
def pay_again(client, django_capture_on_commit_callbacks):
    def pay(world, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response, stripe_event = stripe(client, world, "active", sub_id="sub_1QbSubscribedAgain", **kwargs)
        assert response.status_code == 200, response.content
        return stripe_event

    return pay


def test_sales_held_while_billing_lapsed_earn_once_at_their_own_times_when_the_merchant_pays(
    lapsed, post_webhook, pay_again, client, django_capture_on_commit_callbacks
):
    first_at = (timezone.now() - dt.timedelta(minutes=50)).replace(microsecond=0)
    second_at = first_at + dt.timedelta(minutes=20)
    first = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "pos-sale-1", 4200, first_at)
    second = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "pos-sale-2", 1500, second_at)

    for delivery in (first, second):
        status, code, _attempts, error = held(delivery)
        assert (status, code) == (WebhookDelivery.Status.FAILED, "earning_paused")
        assert error.startswith("Earning points is paused")
    assert balance(lapsed) == lapsed.opening_balance
    assert not Purchase.objects.filter(external_id__startswith="pos-sale").exists()

    paid = pay_again(lapsed, created=NOW)

    assert balance(lapsed) == lapsed.opening_balance + 42 + 15 == ledger_sum(Card.objects.get(pk=lapsed.card.pk))
    sales = {p.external_id: p for p in Purchase.objects.filter(external_id__startswith="pos-sale")}
    assert (sales["pos-sale-1"].occurred_at, sales["pos-sale-2"].occurred_at) == (first_at, second_at)
    assert sales["pos-sale-1"].pk < sales["pos-sale-2"].pk  # replayed oldest first
    earned_at = set(Card.objects.get(pk=lapsed.card.pk).entries.filter(
        purchase__external_id__startswith="pos-sale").values_list("occurred_at", flat=True))
    assert earned_at == {first_at, second_at}
    for delivery in (first, second):
        assert held(delivery)[:2] == (WebhookDelivery.Status.PROCESSED, "")
    assert StripeEvent.objects.get(event_id=paid["id"]).outcome.endswith(
        "; replaying 2 POS deliveries held while earning was paused")

    # Stripe delivers the same event again, then a later one; an admin replays a delivery by hand.
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, paid).json()["duplicate"] is True
    later = pay_again(lapsed, created=NOW + 60)
    process_delivery(first.pk, replay=True)

    assert balance(lapsed) == lapsed.opening_balance + 57
    assert Purchase.objects.filter(external_id__startswith="pos-sale").count() == 2
    assert "replaying" not in StripeEvent.objects.get(event_id=later["id"]).outcome


def test_only_this_merchants_recent_sales_held_for_billing_are_replayed(
    lapsed, post_webhook, pay_again, make_connection
):
    sold_at = (timezone.now() - dt.timedelta(minutes=30)).replace(microsecond=0)
    # Another merchant that never subscribed: earning paused there too, and it stays so.
    other = build_world()
    other_connection = make_connection(other, "generic", {"signing_secret": POS_SECRET})
    theirs = pos_sale(post_webhook, other_connection, other.card.number, "their-sale", 3000, sold_at)
    # Ours, failed for another reason: a sale in a currency this merchant does not take.
    foreign = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "usd-sale", 2000, sold_at, currency="USD")
    # Ours, held for billing, but received before the replay window.
    stale = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "old-sale", 9900, sold_at)
    WebhookDelivery.objects.filter(pk=stale.pk).update(
        received_at=timezone.now() - dt.timedelta(days=HELD_DELIVERIES_MAX_DAYS, hours=1))
    recent = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "recent-sale", 1000, sold_at)
    assert held(theirs)[1] == held(stale)[1] == held(recent)[1] == "earning_paused"
    assert held(foreign)[:2] == (WebhookDelivery.Status.FAILED, "invalid_request")
    untouched = {delivery.pk: held(delivery) for delivery in (theirs, foreign, stale)}

    pay_again(lapsed, created=NOW)

    assert held(recent)[0] == WebhookDelivery.Status.PROCESSED
    assert balance(lapsed) == lapsed.opening_balance + 10
    assert {delivery.pk: held(delivery) for delivery in (theirs, foreign, stale)} == untouched
    assert not Purchase.objects.filter(external_id__in=["their-sale", "usd-sale", "old-sale"]).exists()


# Refunds sent during the lapse -----------------------------------------------------------------

def pos_refund(post_webhook, connection, refund_id: str, sale_id: str, refunded_at: dt.datetime,
               amount: int | None = None) -> WebhookDelivery:
    """A refund of `sale_id` (all of it without an amount), posted through the real webhook URL."""
    data = {"id": refund_id, "purchase_id": sale_id, "currency": "EUR", "occurred_at": refunded_at.isoformat()}
    if amount is not None:
        data["amount"] = amount
    body = json.dumps({"type": "purchase.refunded", "timestamp": refunded_at.isoformat(), "data": data}).encode()
    response = post_webhook(connection, body, sign(POS_SECRET, f"msg_{refund_id}", int(time.time()), body))
    assert response.status_code == 200, response.content
    return WebhookDelivery.objects.get(pk=response.json()["delivery"])


def run_out_of_retries(delivery: WebhookDelivery) -> None:
    """The automatic retries the lapse outlasts, each failing the same way."""
    while held(delivery)[2] < MAX_AUTOMATIC_ATTEMPTS:
        process_delivery(delivery.pk)
    far_later = timezone.now() + dt.timedelta(days=1)
    assert delivery.pk not in deliveries_to_retry(far_later)


def refunds_on_card(world) -> int:
    return Card.objects.get(pk=world.card.pk).entries.filter(kind=LedgerEntry.Kind.REFUND).count()


def test_sales_and_their_refunds_sent_during_the_lapse_reverse_once_after_payment(
    lapsed, post_webhook, pay_again, client, django_capture_on_commit_callbacks
):
    sold_at = (timezone.now() - dt.timedelta(minutes=50)).replace(microsecond=0)
    # In order: a sale, then its full refund. Out of order: a partial refund reached us before its sale.
    sale = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "pos-sale-1", 4200, sold_at)
    refund = pos_refund(post_webhook, lapsed.connection, "pos-refund-1", "pos-sale-1",
                        sold_at + dt.timedelta(minutes=5))
    early_refund = pos_refund(post_webhook, lapsed.connection, "pos-refund-2", "pos-sale-2",
                              sold_at + dt.timedelta(minutes=25), amount=500)
    late_sale = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "pos-sale-2", 1500,
                         sold_at + dt.timedelta(minutes=20))

    assert held(sale)[:2] == held(late_sale)[:2] == (WebhookDelivery.Status.FAILED, "earning_paused")
    for waiting in (refund, early_refund):
        status, code, _attempts, error = held(waiting)
        assert (status, code) == (WebhookDelivery.Status.FAILED, "sale_not_seen")
        assert "not seen yet" in error
        run_out_of_retries(waiting)
    assert balance(lapsed) == lapsed.opening_balance

    paid = pay_again(lapsed, created=NOW)

    for delivery in (sale, late_sale, refund, early_refund):
        assert held(delivery)[:2] == (WebhookDelivery.Status.PROCESSED, "")
    refund.refresh_from_db()
    early_refund.refresh_from_db()
    assert (refund.outcome[0]["points_reversed"], early_refund.outcome[0]["points_reversed"]) == (42, 5)
    # The fully refunded sale nets to zero; the other keeps the points for what was not given back.
    assert balance(lapsed) == lapsed.opening_balance + 10 == ledger_sum(Card.objects.get(pk=lapsed.card.pk))
    assert refunds_on_card(lapsed) == 2

    # Stripe delivers the event again, then a later one; the replay runs again; an admin replays a refund.
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, paid).json()["duplicate"] is True
    pay_again(lapsed, created=NOW + 60)
    assert replay_held_deliveries(lapsed.merchant.pk) == {}
    process_delivery(refund.pk, replay=True)
    process_delivery(early_refund.pk, replay=True)

    assert balance(lapsed) == lapsed.opening_balance + 10
    assert refunds_on_card(lapsed) == 2


def test_a_refund_for_a_sale_that_never_arrives_stays_failed_after_payment(lapsed, post_webhook, pay_again):
    sold_at = (timezone.now() - dt.timedelta(minutes=30)).replace(microsecond=0)
    sale = pos_sale(post_webhook, lapsed.connection, lapsed.card.number, "pos-sale-1", 1000, sold_at)
    orphan = pos_refund(post_webhook, lapsed.connection, "pos-refund-9", "never-sent", sold_at)
    run_out_of_retries(orphan)

    pay_again(lapsed, created=NOW)

    assert held(sale)[0] == WebhookDelivery.Status.PROCESSED
    status, code, attempts, error = held(orphan)
    assert (status, code) == (WebhookDelivery.Status.FAILED, "sale_not_seen")
    assert attempts == MAX_AUTOMATIC_ATTEMPTS + 1  # tried once more by the replay, then left for an admin
    assert error == "Refund pos-refund-9 is for sale never-sent, not seen yet."
    assert balance(lapsed) == lapsed.opening_balance + 10
    assert refunds_on_card(lapsed) == 0
