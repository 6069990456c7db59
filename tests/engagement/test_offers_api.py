"""GET /api/v1/offers/: what the wallet app shows. Offers open now near me rank first; an offer outside its
hours on its store's clock is hidden; only my own active cards' merchants appear; my location, sent once,
is remembered; and the card's pass carries the best offer."""
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from engagement.models import Audience, Offer
from merchants.models import Store
from tests.api.conftest import client_for
from tests.engagement.test_offers import MONDAY, make_offer
from tests.factories import make_card, make_customer, make_merchant, make_program
from tests.wallet.helpers import buy
from wallet.models import Customer
from wallet.passes.apple.pkpass import build_pass_json
from wallet.passes.google.objects import card_fields
from wallet.services import leave_program

pytestmark = pytest.mark.django_db

HERE = (48.8566, 2.3522)
THREE_PM_IN_TOKYO = MONDAY + dt.timedelta(hours=6)  # 07:00 in Paris
METRES_PER_DEGREE_OF_LATITUDE = 111_195


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The site's clock reads Monday 2 March 2026, 06:00 UTC unless a test moves it."""
    moment = {"now": THREE_PM_IN_TOKYO}
    monkeypatch.setattr(timezone, "now", lambda: moment["now"])
    return moment


def shop(name, metres_north=0.0, *, time_zone="Europe/Paris", customer=None):
    """A merchant with one store `metres_north` of HERE, and the customer's card there."""
    merchant = make_merchant(name=name)
    store = Store.objects.create(
        merchant=merchant, name=f"{name} store", time_zone=time_zone,
        latitude=Decimal(str(round(HERE[0] + metres_north / METRES_PER_DEGREE_OF_LATITUDE, 6))),
        longitude=Decimal(str(HERE[1])),
    )
    program = make_program(merchant)
    card = make_card(program, customer) if customer is not None else None
    return merchant, store, card


@pytest.fixture
def me():
    return make_customer()


def offers(customer, **params):
    response = client_for(customer.user).get("/api/v1/offers/", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_an_offer_300_m_away_ranks_above_one_20_km_away(me):
    far_merchant, far_store, far_card = shop("Suburb Roastery", 20_000, customer=me)
    near_merchant, near_store, near_card = shop("Corner Bakery", 300, customer=me)
    far = make_offer(far_merchant, title="Roastery double points")  # older: would win a tie
    near = make_offer(near_merchant, title="Croissant bonus", kind=Offer.Kind.BONUS_POINTS, multiplier=None,
                      bonus_points=20)
    body = offers(me, latitude=HERE[0], longitude=HERE[1])
    assert [item["id"] for item in body] == [near.pk, far.pk]
    first, second = body
    assert first["merchant"] == {"id": near_merchant.pk, "name": "Corner Bakery"}
    assert first["card_id"] == near_card.pk and second["card_id"] == far_card.pk
    assert first["nearest_store"]["id"] == near_store.pk and abs(first["nearest_store"]["distance_m"] - 300) <= 2
    assert abs(second["nearest_store"]["distance_m"] - 20_000) <= 20
    assert first["score"] > second["score"]
    assert first["reasons"] == ["Corner Bakery store is 300 m away"]
    assert first["kind"] == "bonus_points" and first["bonus_points"] == 20 and first["multiplier"] is None
    assert second["multiplier"] == "2.00" and second["reward"] is None and second["valid_until"] is None


def test_a_breakfast_offer_is_hidden_when_it_is_afternoon_at_its_tokyo_store(me, clock):
    merchant, tokyo, _card = shop("Kissaten", time_zone="Asia/Tokyo", customer=me)  # the merchant keeps Paris time
    breakfast = make_offer(merchant, title="Breakfast set", kind=Offer.Kind.DISCOUNT, multiplier=None,
                           discount_text="Toast and coffee 500 yen", coupon_code="MORNING",
                           daily_start=dt.time(7), daily_end=dt.time(10))
    all_day = make_offer(merchant, title="Points all day")
    # 15:00 in Tokyo (07:00 in Paris, inside the window on the merchant's clock): hidden.
    assert [item["id"] for item in offers(me)] == [all_day.pk]
    clock["now"] = MONDAY  # 09:00 in Tokyo
    body = {item["id"]: item for item in offers(me)}
    assert set(body) == {breakfast.pk, all_day.pk}
    assert body[breakfast.pk]["open_until"] == "2026-03-02T10:00:00+09:00"
    assert body[breakfast.pk]["coupon_code"] == "MORNING"
    assert body[breakfast.pk]["discount_text"] == "Toast and coffee 500 yen"
    assert body[all_day.pk]["open_until"] is None


def test_only_my_active_cards_merchants_offers_appear(me):
    mine, _store, my_card = shop("Mine", 100, customer=me)
    mine_offer = make_offer(mine, title="Mine")
    someone = make_customer()
    theirs, _store, _card = shop("Theirs", 100, customer=someone)
    make_offer(theirs, title="Theirs")
    not_joined, _store, _card = shop("Not joined", 100)
    make_offer(not_joined, title="Not joined")
    closed, _store, closed_card = shop("Left", 100, customer=me)
    make_offer(closed, title="Left")
    leave_program(closed_card)
    assert [item["title"] for item in offers(me)] == ["Mine"]
    assert [item["title"] for item in offers(someone)] == ["Theirs"]
    assert all(item["id"] != mine_offer.pk for item in offers(someone))
    assert my_card.pk not in [item["card_id"] for item in offers(someone)]


def test_my_location_is_remembered_and_ranks_the_next_request(me, clock):
    merchant, store, _card = shop("Corner", 500, customer=me)
    make_offer(merchant)
    assert offers(me)[0]["nearest_store"] is None  # no location known yet
    offers(me, latitude=HERE[0], longitude=HERE[1])
    customer = Customer.objects.get(pk=me.pk)
    assert (customer.last_seen_latitude, customer.last_seen_longitude) == (Decimal("48.856600"), Decimal("2.352200"))
    assert customer.last_seen_at == THREE_PM_IN_TOKYO
    later = offers(me)  # no coordinates: the remembered ones
    assert later[0]["nearest_store"]["id"] == store.pk and abs(later[0]["nearest_store"]["distance_m"] - 500) <= 2


@pytest.mark.parametrize("params, field", [
    ({"latitude": HERE[0]}, "longitude"),
    ({"longitude": HERE[1]}, "latitude"),
    ({"latitude": 91, "longitude": 0}, "latitude"),
    ({"latitude": 0, "longitude": -180.5}, "longitude"),
    ({"latitude": "nan", "longitude": 0}, "latitude"),
    ({"latitude": "north", "longitude": 0}, "latitude"),
])
def test_a_bad_location_is_a_400_in_the_error_shape_and_nothing_is_remembered(me, params, field):
    response = client_for(me.user).get("/api/v1/offers/", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and list(error["fields"]) == [field]
    assert Customer.objects.get(pk=me.pk).last_seen_at is None


def test_offers_are_for_signed_in_customers_only(client):
    response = client.get("/api/v1/offers/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_my_habits_lift_a_merchants_offers_among_shops_at_the_same_distance(me):
    usual, _store, usual_card = shop("Usual bakery", 400, customer=me)
    other, _store, _card = shop("Other bakery", 400, customer=me)
    other_offer = make_offer(other, title="Other's double points")
    pastry_lovers = Audience.objects.create(merchant=usual, name="Pastry lovers", purchase_categories=["pastry"])
    for days_ago in (1, 5, 9):
        buy(usual_card, 800, occurred_at=THREE_PM_IN_TOKYO - dt.timedelta(days=days_ago),
            items=[{"name": "Croissant", "category": "Pastry"}])
    plain = make_offer(usual, title="Usual's double points")
    pastry = make_offer(usual, title="Pastry week", kind=Offer.Kind.BONUS_POINTS, multiplier=None, bonus_points=10,
                        audience=pastry_lovers)
    body = offers(me, latitude=HERE[0], longitude=HERE[1])
    assert [item["id"] for item in body] == [pastry.pk, plain.pk, other_offer.pk]
    assert "3 visits in the last 90 days" in body[0]["reasons"] and "you buy pastry" in body[0]["reasons"]
    assert "you buy pastry" not in body[1]["reasons"]
    assert body[2]["reasons"] == ["Other bakery store is 400 m away"]


def test_an_offer_ending_soon_ranks_up(me):
    merchant, _store, _card = shop("Deli", 200, customer=me)
    lasting = make_offer(merchant, title="All month")
    ending = make_offer(merchant, title="Ends in an hour", valid_until=THREE_PM_IN_TOKYO + dt.timedelta(hours=1))
    body = offers(me, latitude=HERE[0], longitude=HERE[1])
    assert [item["id"] for item in body] == [ending.pk, lasting.pk]
    assert body[0]["reasons"][1:] == ["ends at 08:00", "last day"]  # the store's clock (Paris)
    assert body[0]["open_until"] == "2026-03-02T08:00:00+01:00"


def test_the_pass_shows_the_best_offer_and_a_closed_card_none(me):
    merchant, _store, card = shop("Deli", 200, customer=me)
    assert "offer" not in [f["key"] for f in build_pass_json(card)["storeCard"]["backFields"]]
    assert card_fields(card)["textModulesData"] == []
    make_offer(merchant, title="Soup of the day", kind=Offer.Kind.DISCOUNT, multiplier=None,
               discount_text="2 EUR off soups")
    offer_field = next(f for f in build_pass_json(card)["storeCard"]["backFields"] if f["key"] == "offer")
    assert offer_field == {"key": "offer", "label": "Offer", "value": "Soup of the day: 2 EUR off soups"}
    assert card_fields(card)["textModulesData"] == [
        {"header": "Offer", "body": "Soup of the day: 2 EUR off soups", "id": "offer"}]
    closed = leave_program(card)
    assert "offer" not in [f["key"] for f in build_pass_json(closed)["storeCard"]["backFields"]]
    assert card_fields(closed)["textModulesData"] == []


def test_the_offers_list_takes_a_fixed_number_of_queries(me, django_assert_max_num_queries):
    for number in range(3):
        merchant, store, _card = shop(f"Shop {number}", 100 * number, customer=me)
        for kind in range(4):
            make_offer(merchant, title=f"Offer {number}.{kind}", stores=[store] if kind % 2 else [])
    client = client_for(me.user)
    # user, customer, remember the location, cards, offers, their stores, all stores, purchases; and the
    # savepoint (here; the transaction in production) that undoes the location if the page is a 404
    with django_assert_max_num_queries(10):
        response = client.get("/api/v1/offers/", {"latitude": HERE[0], "longitude": HERE[1]})
    assert len(response.json()["results"]) == 12
