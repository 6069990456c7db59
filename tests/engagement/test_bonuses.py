"""Offers at the counter: a purchase inside a double-points offer earns double and its ledger entry names
the offer; outside the offer's window, or at a store that does not take part, it earns as usual; a refund
takes back what it earned; when several offers hold, the customer gets the one worth most for the sale."""
import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from engagement.bonuses import earning_bonus
from engagement.models import Audience, Offer
from merchants.models import Store
from pos_integration.services import register_device
from tests.api.conftest import client_for
from tests.engagement.test_offers import make_offer
from tests.pos.helpers import as_cashier, make_cashier
from tests.wallet.helpers import buy, ledger_sum
from wallet.ledger import lock_card
from wallet.models import Card, LedgerEntry, Purchase
from wallet.services import PurchaseRequest, refund_purchase

pytestmark = pytest.mark.django_db

UTC = dt.UTC
SATURDAY_11_IN_PARIS = dt.datetime(2026, 3, 7, 10, tzinfo=UTC)
SATURDAY_13_IN_PARIS = SATURDAY_11_IN_PARIS + dt.timedelta(hours=2)


@pytest.fixture
def clock(monkeypatch):
    """set(moment): from now on the site's clock reads `moment`."""

    def set_to(moment):
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return set_to


@pytest.fixture
def saturday_mornings(world):
    """Double points on Saturdays 09:00-12:00 (Paris, the store's zone), at every store."""
    return make_offer(world.merchant, title="Saturday morning double points", weekdays=[5],
                      daily_start=dt.time(9), daily_end=dt.time(12),
                      valid_from=SATURDAY_11_IN_PARIS - dt.timedelta(days=30))


def till_at(store) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {register_device(store, 'Till').key}")
    return client


def sale(client, card, external_id, amount=2599):
    body = {"code": card.number, "external_id": external_id, "amount": amount, "currency": "EUR"}
    response = client.post("/api/pos/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"key-{external_id}")
    assert response.status_code == 201, response.content
    return response.json()


def earn_entry(external_id) -> LedgerEntry:
    return LedgerEntry.objects.get(purchase__external_id=external_id, kind=LedgerEntry.Kind.EARN)


def test_a_purchase_in_a_double_points_window_earns_double_and_names_the_offer(world, saturday_mornings, clock):
    clock(SATURDAY_11_IN_PARIS)
    result = sale(till_at(world.store), world.card, "R-1")
    assert result["points_earned"] == 51  # 25.99 EUR x 1 point x 2, rounded down; 25 without the offer
    entry = earn_entry("R-1")
    assert entry.delta == 51 and entry.multiplier == Decimal("2")
    assert entry.offer_id == saturday_mornings.pk and entry.offer_title == "Saturday morning double points"
    history = client_for(world.customer.user).get(f"/api/v1/cards/{world.card.pk}/history/").json()["results"]
    assert history[0]["delta"] == 51 and history[0]["offer_title"] == "Saturday morning double points"


def test_outside_its_window_the_same_purchase_earns_as_usual(world, saturday_mornings, clock):
    clock(SATURDAY_13_IN_PARIS)
    assert sale(till_at(world.store), world.card, "R-2")["points_earned"] == 25
    entry = earn_entry("R-2")
    assert entry.offer_id is None and entry.offer_title == "" and entry.multiplier == Decimal("1")


def test_a_refund_of_a_double_points_purchase_takes_back_the_double(world, saturday_mornings, clock):
    clock(SATURDAY_11_IN_PARIS)
    client = till_at(world.store)
    sale(client, world.card, "R-3")
    assert Card.objects.get(pk=world.card.pk).balance == 51
    cashier = make_cashier(world.merchant)
    clock(SATURDAY_13_IN_PARIS)  # refunded after the offer's window: what was earned is what comes back
    half = client.post("/api/pos/v1/refunds/", {"external_id": "R-3", "amount": 1300}, format="json",
                       HTTP_IDEMPOTENCY_KEY="refund-1", **as_cashier(cashier))
    assert half.status_code == 201, half.content
    assert half.json()["points_reversed"] == 26  # 51 x 13.00 / 25.99, half up
    rest = client.post("/api/pos/v1/refunds/", {"external_id": "R-3"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="refund-2", **as_cashier(cashier))
    assert rest.json()["points_reversed"] == 25 and rest.json()["balance"] == 0
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == ledger_sum(card) == 0
    assert all(e.reverses_id == earn_entry("R-3").pk for e in card.entries.filter(kind=LedgerEntry.Kind.REFUND))


def test_a_store_limited_offer_applies_only_at_its_store(world, clock):
    airport = Store.objects.create(merchant=world.merchant, name="Airport", time_zone="Europe/Paris")
    make_offer(world.merchant, title="Airport bonus", kind=Offer.Kind.BONUS_POINTS, multiplier=None,
               bonus_points=40, stores=[airport])
    clock(SATURDAY_11_IN_PARIS)
    assert sale(till_at(world.store), world.card, "R-4")["points_earned"] == 25
    assert sale(till_at(airport), world.card, "R-5")["points_earned"] == 65
    assert earn_entry("R-5").offer_title == "Airport bonus" and earn_entry("R-4").offer_id is None
    # A sale that names no store (e.g. an online order) gets no store-limited offer.
    assert buy(world.card, 2599, "R-6", occurred_at=SATURDAY_11_IN_PARIS).points_earned == 25


def test_of_several_offers_the_one_worth_most_for_this_sale_applies(world):
    one_and_half = make_offer(world.merchant, title="x1.5", multiplier=Decimal("1.5"))
    plus_thirty = make_offer(world.merchant, title="+30", kind=Offer.Kind.BONUS_POINTS, multiplier=None,
                             bonus_points=30)
    small = buy(world.card, 2599, "small", occurred_at=SATURDAY_11_IN_PARIS)  # x1.5: 38, +30: 55
    large = buy(world.card, 10000, "large", occurred_at=SATURDAY_11_IN_PARIS)  # x1.5: 150, +30: 130
    assert (small.points_earned, earn_entry("small").offer_id) == (55, plus_thirty.pk)
    assert (large.points_earned, earn_entry("large").offer_id) == (150, one_and_half.pk)


def test_the_tier_multiplier_counts_when_comparing_offers(world):
    one_and_half = make_offer(world.merchant, title="x1.5", multiplier=Decimal("1.5"))
    plus_thirty = make_offer(world.merchant, title="+30", kind=Offer.Kind.BONUS_POINTS, multiplier=None,
                             bonus_points=30)
    silver = buy(world.card, 4500, "silver", occurred_at=SATURDAY_11_IN_PARIS)  # x1.5: 67, +30: 75
    assert (silver.points_earned, earn_entry("silver").offer_id) == (75, plus_thirty.pk)
    Card.objects.filter(pk=world.card.pk).update(tier=world.gold)  # x2
    gold = buy(world.card, 4500, "gold", occurred_at=SATURDAY_11_IN_PARIS)  # x2 x1.5: 135, x2 +30: 120
    assert (gold.points_earned, earn_entry("gold").offer_id) == (135, one_and_half.pk)


def test_equal_offers_go_to_the_one_ending_first(world):
    make_offer(world.merchant, title="Double, no end")
    ending = make_offer(world.merchant, title="Double, ends tonight",
                        valid_until=SATURDAY_11_IN_PARIS + dt.timedelta(hours=12))
    make_offer(world.merchant, title="Double, ends next week",
               valid_until=SATURDAY_11_IN_PARIS + dt.timedelta(days=7))
    buy(world.card, 2599, "tie", occurred_at=SATURDAY_11_IN_PARIS)
    assert earn_entry("tie").offer_id == ending.pk


def test_an_offer_for_another_audience_or_not_yet_started_does_not_apply(world):
    gold_only = Audience.objects.create(merchant=world.merchant, name="Gold")
    gold_only.tiers.set([world.gold])
    make_offer(world.merchant, title="Gold triple", multiplier=Decimal("3"), audience=gold_only)
    make_offer(world.merchant, title="Next week", valid_from=SATURDAY_11_IN_PARIS + dt.timedelta(days=1))
    assert buy(world.card, 2599, "silver", occurred_at=SATURDAY_11_IN_PARIS).points_earned == 25
    assert Purchase.objects.get(external_id="silver").entries.get().offer_id is None


def test_choosing_the_bonus_takes_a_few_queries_however_many_offers(world):
    for number in range(8):
        make_offer(world.merchant, title=f"Offer {number}", multiplier=Decimal("1.25") + number,
                   stores=[world.store] if number % 2 else [])
    request = PurchaseRequest(external_id="q", amount=2599, currency="EUR", store_id=world.store.pk)
    with transaction.atomic():
        card = lock_card(world.card.pk)
        with CaptureQueriesContext(connection) as queries:
            bonus = earning_bonus(card, request, SATURDAY_11_IN_PARIS)
    assert bonus.title == "Offer 7" and bonus.multiplier == Decimal("8.25")
    assert len(queries) <= 4  # the store, the offers, their stores, the card's tier


def test_a_refund_through_the_service_reverses_a_bonus_points_purchase_exactly(world):
    make_offer(world.merchant, title="+40", kind=Offer.Kind.BONUS_POINTS, multiplier=None, bonus_points=40)
    buy(world.card, 1000, "bonus", occurred_at=SATURDAY_11_IN_PARIS)
    assert Card.objects.get(pk=world.card.pk).balance == 50
    result = refund_purchase(Purchase.objects.get(external_id="bonus"), amount=None, idempotency_key="r")
    assert result.points_reversed == 50 and result.balance == 0
