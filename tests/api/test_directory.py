"""The public merchant directory and "stores near me", as a prospective customer uses them."""
import datetime as dt
import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from merchants.models import Program, Reward, Store, Tier
from merchants.selectors import EARTH_RADIUS_KM, haversine_m, list_nearby_stores
from tests.api.conftest import client_for
from tests.factories import make_merchant, make_program, make_store

pytestmark = pytest.mark.django_db

# Notre-Dame de Paris, the point every "near me" test searches from.
ORIGIN = (48.853000, 2.349800)
ALL_WEEK = {day: [["00:00", "23:59"], ["23:59", "00:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def north_of(origin, metres):
    """A point `metres` due north of `origin` along the meridian (exact on the sphere)."""
    latitude, longitude = origin
    return latitude + math.degrees(metres / (EARTH_RADIUS_KM * 1000)), longitude


def store_at(merchant, point, *, name=None, city="", time_zone="Europe/Paris", opening_hours=None, is_active=True):
    return Store.objects.create(
        merchant=merchant, name=name or f"Store at {point}", city=city, time_zone=time_zone,
        latitude=Decimal(f"{point[0]:.6f}"), longitude=Decimal(f"{point[1]:.6f}"),
        opening_hours=opening_hours or {}, is_active=is_active,
    )


def nearby(client, **params):
    params.setdefault("latitude", ORIGIN[0])
    params.setdefault("longitude", ORIGIN[1])
    return client.get("/api/v1/stores/nearby/", params)


def names(response):
    return [item["name"] for item in response.json()["results"]]


# Directory --------------------------------------------------------------------------------------------


def test_directory_shows_merchant_programs_tiers_rewards_and_stores_without_login(anon_client, world):
    world.store.address_line, world.store.city = "6 Parvis Notre-Dame", "Paris"
    world.store.save()

    response = anon_client.get("/api/v1/merchants/")

    assert response.status_code == 200
    assert response.json()["count"] == 1
    merchant = response.json()["results"][0]
    assert {key: merchant[key] for key in ("id", "name", "currency", "time_zone", "brand_color")} == {
        "id": world.merchant.pk, "name": world.merchant.name, "currency": "EUR", "time_zone": "Europe/Paris",
        "brand_color": world.merchant.brand_color,
    }
    [program] = merchant["programs"]
    assert program["id"] == world.program.pk
    assert program["rounding"] == "floor"
    assert [(tier["name"], tier["threshold"]) for tier in program["tiers"]] == [("Silver", 0), ("Gold", 500)]
    assert Decimal(program["tiers"][1]["multiplier"]) == Decimal("2")
    assert program["rewards"] == [
        {"id": world.coffee.pk, "name": "Coffee", "kind": "free_item", "value": 0, "points_cost": 100}
    ]
    [store] = merchant["stores"]
    assert store["address"] == "6 Parvis Notre-Dame" and store["city"] == "Paris"
    assert store["latitude"] == pytest.approx(48.8566) and store["longitude"] == pytest.approx(2.3522)
    assert store["time_zone"] == "Europe/Paris"


def test_directory_leaves_out_inactive_programs_rewards_and_stores(anon_client, world):
    make_program(world.merchant, name="Old scheme", is_active=False)
    Reward.objects.create(program=world.program, name="Retired muffin", points_cost=50, is_active=False)
    Store.objects.create(merchant=world.merchant, name="Closed for good", time_zone="Europe/Paris", is_active=False)

    merchant = anon_client.get(f"/api/v1/merchants/{world.merchant.pk}/").json()

    assert [program["name"] for program in merchant["programs"]] == [world.program.name]
    assert [reward["name"] for reward in merchant["programs"][0]["rewards"]] == ["Coffee"]
    assert [store["name"] for store in merchant["stores"]] == [world.store.name]


def test_a_stale_token_does_not_lock_anyone_out_of_the_public_directory(world):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")

    assert client.get("/api/v1/merchants/").status_code == 200
    assert nearby(client).status_code == 200


def test_search_finds_merchants_by_name_case_insensitively(anon_client, db):
    lumen = make_merchant(name="Café Lumen")
    make_merchant(name="Pageturner Books")

    response = anon_client.get("/api/v1/merchants/", {"search": "LUMEN"})

    assert [merchant["id"] for merchant in response.json()["results"]] == [lumen.pk]


def test_search_finds_merchants_by_the_city_of_a_store(anon_client, db):
    books = make_merchant(name="Pageturner Books")
    store_at(books, (40.6782, -73.9442), city="Brooklyn")
    store_at(books, (40.6800, -73.9500), city="Brooklyn")  # two stores there: still listed once
    cafe = make_merchant(name="Café Lumen")
    store_at(cafe, ORIGIN, city="Paris")

    response = anon_client.get("/api/v1/merchants/", {"search": "brooklyn"})

    assert [merchant["id"] for merchant in response.json()["results"]] == [books.pk]
    assert response.json()["count"] == 1


def test_search_ignores_the_city_of_a_closed_store(anon_client, db):
    books = make_merchant(name="Pageturner Books")
    store_at(books, (40.6782, -73.9442), city="Brooklyn", is_active=False)

    assert anon_client.get("/api/v1/merchants/", {"search": "Brooklyn"}).json()["count"] == 0


def test_inactive_merchants_are_hidden_from_list_search_and_detail(anon_client, world):
    world.merchant.is_active = False
    world.merchant.save()

    assert anon_client.get("/api/v1/merchants/").json()["count"] == 0
    assert anon_client.get("/api/v1/merchants/", {"search": world.merchant.name}).json()["count"] == 0
    response = anon_client.get(f"/api/v1/merchants/{world.merchant.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_merchant_is_404_in_the_error_shape(anon_client, db):
    response = anon_client.get("/api/v1/merchants/999999/")

    assert response.status_code == 404
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_directory_query_count_does_not_grow_with_the_number_of_merchants(anon_client, db):
    def queries_for_listing():
        with CaptureQueriesContext(connection) as captured:
            assert anon_client.get("/api/v1/merchants/").status_code == 200
        return len(captured)

    def add_merchant():
        merchant = make_merchant()
        make_store(merchant)
        program = make_program(merchant)
        Tier.objects.create(program=program, name="Base", threshold=0)
        Reward.objects.create(program=program, name="Tea", points_cost=10)

    add_merchant()
    with_one = queries_for_listing()
    for _ in range(4):
        add_merchant()

    assert queries_for_listing() == with_one


# Near me ----------------------------------------------------------------------------------------------


def test_nearby_lists_the_closer_store_first_and_leaves_out_stores_beyond_the_radius(anon_client, db):
    merchant = make_merchant(name="Café Lumen")
    store_at(merchant, north_of(ORIGIN, 20_000), name="Twenty km")
    store_at(merchant, north_of(ORIGIN, 300), name="Three hundred m")
    store_at(merchant, north_of(ORIGIN, 300_000), name="Three hundred km")

    response = nearby(anon_client, radius_km=25)

    assert response.status_code == 200
    assert names(response) == ["Three hundred m", "Twenty km"]
    first, second = response.json()["results"]
    # Stored coordinates have six decimals (about 0.1 m), so distances come back to within a metre.
    assert abs(first["distance_m"] - 300) <= 1 and abs(second["distance_m"] - 20_000) <= 1
    assert first["merchant"] == {"id": merchant.pk, "name": "Café Lumen", "brand_color": merchant.brand_color}


def test_nearby_radius_defaults_to_25_km_and_can_be_narrowed_or_widened(anon_client, db):
    merchant = make_merchant()
    store_at(merchant, north_of(ORIGIN, 300), name="Near")
    store_at(merchant, north_of(ORIGIN, 24_000), name="Within 25 km")
    store_at(merchant, north_of(ORIGIN, 26_000), name="Just beyond 25 km")

    assert names(nearby(anon_client)) == ["Near", "Within 25 km"]
    assert names(nearby(anon_client, radius_km=1)) == ["Near"]
    assert names(nearby(anon_client, radius_km=200)) == ["Near", "Within 25 km", "Just beyond 25 km"]


def test_nearby_shows_a_store_open_all_week_as_open_and_one_without_hours_as_closed(anon_client, db):
    merchant = make_merchant()
    store_at(merchant, north_of(ORIGIN, 100), name="Always open", opening_hours=ALL_WEEK)
    store_at(merchant, north_of(ORIGIN, 200), name="No hours")

    results = nearby(anon_client).json()["results"]

    assert [(item["name"], item["is_open_now"]) for item in results] == [("Always open", True), ("No hours", False)]


def test_nearby_leaves_out_closed_stores_stores_of_inactive_merchants_and_stores_without_coordinates(anon_client, db):
    merchant = make_merchant()
    store_at(merchant, north_of(ORIGIN, 100), name="Open for business")
    store_at(merchant, north_of(ORIGIN, 150), name="Shut down", is_active=False)
    Store.objects.create(merchant=merchant, name="Somewhere", time_zone="Europe/Paris")
    gone = make_merchant()
    gone.is_active = False
    gone.save()
    store_at(gone, north_of(ORIGIN, 50), name="Merchant left")

    assert names(nearby(anon_client)) == ["Open for business"]


def test_nearby_is_paginated_nearest_first(anon_client, db):
    merchant = make_merchant()
    for metres in (900, 100, 500):
        store_at(merchant, north_of(ORIGIN, metres), name=f"{metres} m")

    first_page = nearby(anon_client, page_size=2).json()
    second_page = nearby(anon_client, page_size=2, page=2).json()

    assert first_page["count"] == 3
    assert names_of(first_page) + names_of(second_page) == ["100 m", "500 m", "900 m"]


def names_of(page):
    return [item["name"] for item in page["results"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"latitude": None}, "latitude"),
        ({"longitude": None}, "longitude"),
        ({"latitude": "north"}, "latitude"),
        ({"longitude": "1,5"}, "longitude"),
        ({"latitude": "NaN"}, "latitude"),
        ({"latitude": 90.5}, "latitude"),
        ({"latitude": -91}, "latitude"),
        ({"longitude": 180.01}, "longitude"),
        ({"longitude": -181}, "longitude"),
        ({"radius_km": 0}, "radius_km"),
        ({"radius_km": -5}, "radius_km"),
        ({"radius_km": 200.5}, "radius_km"),
        ({"radius_km": "far"}, "radius_km"),
    ],
)
def test_bad_coordinates_or_radius_are_400_in_the_error_shape(anon_client, db, params, field):
    query = {"latitude": ORIGIN[0], "longitude": ORIGIN[1], **params}
    query = {key: value for key, value in query.items() if value is not None}

    response = anon_client.get("/api/v1/stores/nearby/", query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert list(response.json()["error"]["fields"]) == [field]


# The selector, with the clock fixed ----------------------------------------------------------------

MONDAY_NINE_TO_FIVE = {"mon": [["09:00", "17:00"]]}


@pytest.mark.parametrize(
    ("now", "open_stores"),
    [
        # Monday 20:00 UTC: 10:00 in Honolulu (open), 22:00 in Paris (closed).
        (dt.datetime(2026, 6, 1, 20, 0, tzinfo=dt.UTC), {"Honolulu clock"}),
        # Monday 08:00 UTC: 10:00 in Paris (open), still Sunday 22:00 in Honolulu (closed).
        (dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC), {"Paris clock"}),
    ],
)
def test_opening_hours_are_judged_in_each_stores_own_time_zone(db, now, open_stores):
    merchant = make_merchant()
    store_at(merchant, north_of(ORIGIN, 100), name="Honolulu clock", time_zone="Pacific/Honolulu",
             opening_hours=MONDAY_NINE_TO_FIVE)
    store_at(merchant, north_of(ORIGIN, 200), name="Paris clock", time_zone="Europe/Paris",
             opening_hours=MONDAY_NINE_TO_FIVE)

    found = list_nearby_stores(*ORIGIN, 25, now=now)

    assert {item.store.name for item in found if item.is_open_now} == open_stores
    assert len(found) == 2


def test_a_store_whose_stored_hours_cannot_be_read_is_shown_closed_and_the_list_still_works(db):
    merchant = make_merchant()
    store_at(merchant, north_of(ORIGIN, 100), name="Garbled")
    Store.objects.filter(name="Garbled").update(opening_hours={"mon": "all day"})

    [item] = list_nearby_stores(*ORIGIN, 25, now=dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC))

    assert item.is_open_now is False


@pytest.mark.parametrize(("here", "there"), [(179.95, -179.95), (-179.95, 179.95)])
def test_nearby_works_across_the_antimeridian_in_both_directions(db, here, there):
    merchant = make_merchant(time_zone="Pacific/Fiji")
    store_at(merchant, (-16.5, there), name="Across the line", time_zone="Pacific/Fiji")

    [item] = list_nearby_stores(-16.5, here, 25)

    assert item.store.name == "Across the line"
    assert 10_600 < item.distance_m < 10_700  # 0.1 degree of longitude at 16.5 degrees south


def test_a_store_at_the_widest_point_of_a_wide_circle_far_north_is_found(db):
    """At 70 degrees north a 200 km circle spans about 5.26 degrees of longitude at its widest point,
    which lies north of its centre; a box built from the centre's latitude alone would miss it."""
    centre, radius_km = (70.0, 20.0), 199.9
    angular = radius_km / EARTH_RADIUS_KM
    widest = (
        math.degrees(math.asin(math.sin(math.radians(centre[0])) / math.cos(angular))),
        centre[1] + math.degrees(math.asin(math.sin(angular) / math.cos(math.radians(centre[0])))),
    )
    merchant = make_merchant(time_zone="Europe/Oslo")
    store_at(merchant, widest, name="Edge of the circle", time_zone="Europe/Oslo")

    [item] = list_nearby_stores(*centre, 200)

    assert item.store.name == "Edge of the circle"
    assert abs(item.distance_m - 199_900) <= 1


def test_nearby_works_around_a_pole(db):
    merchant = make_merchant(time_zone="UTC")
    store_at(merchant, (89.95, 180.0), name="Across the pole", time_zone="UTC")

    [item] = list_nearby_stores(89.95, 0.0, 25)

    # 0.05 degrees up to the pole and 0.05 down the other side: about 11.1 km.
    assert 11_000 < item.distance_m < 11_200


def test_haversine_matches_a_known_distance():
    paris, london = (48.8566, 2.3522), (51.5074, -0.1278)

    assert haversine_m(*paris, *london) == pytest.approx(343_500, abs=1_000)
    assert haversine_m(*paris, *paris) == 0


def test_program_decimal_rules_are_exact_strings(anon_client, world):
    Program.objects.filter(pk=world.program.pk).update(points_per_currency_unit=Decimal("2.5000"))

    program = anon_client.get(f"/api/v1/merchants/{world.merchant.pk}/").json()["programs"][0]

    assert Decimal(program["points_per_currency_unit"]) == Decimal("2.5")
