"""The wallet's cards through the customer API: progress, joining and leaving, history, rewards,
redeeming with an Idempotency-Key, and another customer's cards staying out of reach."""
import uuid
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from merchants.models import Reward, Tier
from tests.api.conftest import client_for
from tests.factories import make_card, make_customer, make_merchant, make_program
from tests.wallet.helpers import buy, written_rows
from wallet.models import Card, LedgerEntry, Redemption

pytestmark = pytest.mark.django_db

CARDS = "/api/v1/cards/"


def card_url(card, action=""):
    return f"{CARDS}{card.pk}/{action + '/' if action else ''}"



def redeem(client, card, reward_id, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(card_url(card, "redemptions"), {"reward_id": reward_id}, format="json", **headers)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# Card list and detail --------------------------------------------------------------------------------

def test_card_shows_balance_tier_and_progress_toward_next_tier_and_reward(world, customer_client):
    Reward.objects.create(program=world.program, name="Cake", points_cost=300)
    Reward.objects.create(program=world.program, name="Brunch", points_cost=1000)
    Reward.objects.create(program=world.program, name="Retired", points_cost=200, is_active=False)
    Reward.objects.create(program=world.program, name="Sold out mug", points_cost=250, stock=0)
    buy(world.card, 15000)  # €150 at 1 pt/€ as Silver x1

    listed = customer_client.get(CARDS)
    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    card = listed.json()["results"][0]
    assert card["id"] == world.card.pk and card["number"] == world.card.number and card["status"] == "active"
    assert card["merchant"] == {"id": world.merchant.pk, "name": world.merchant.name,
                                "brand_color": world.merchant.brand_color}
    assert card["program"] == {"id": world.program.pk, "name": world.program.name}
    assert card["balance"] == 150 and card["lifetime_points"] == 150
    assert card["tier"]["name"] == "Silver" and card["tier"]["multiplier"] == "1.00"
    assert card["next_tier"] == {"id": world.gold.pk, "name": "Gold", "threshold": 500, "points_needed": 350}
    # Coffee (100) is affordable; the retired and the sold-out rewards are no goal: Cake is next.
    assert card["next_reward"]["name"] == "Cake"
    assert card["next_reward"]["points_cost"] == 300 and card["next_reward"]["points_needed"] == 150

    buy(world.card, 40000)  # +400 as Silver: lifetime 550 reaches Gold
    card = customer_client.get(card_url(world.card)).json()
    assert card["balance"] == 550 and card["lifetime_points"] == 550
    assert card["tier"]["name"] == "Gold" and card["tier"]["multiplier"] == "2.00"
    assert card["next_tier"] is None
    assert card["next_reward"]["name"] == "Brunch" and card["next_reward"]["points_needed"] == 450


def test_card_that_affords_every_reward_has_no_next_reward(world, customer_client):
    buy(world.card, 20000)
    assert customer_client.get(card_url(world.card)).json()["next_reward"] is None


def test_card_list_holds_every_card_of_the_wallet_and_no_one_elses(world, customer_client, other_customer):
    second = make_card(make_program(make_merchant()), world.customer)
    make_card(world.program, other_customer)
    ids = [card["id"] for card in customer_client.get(CARDS).json()["results"]]
    assert ids == [world.card.pk, second.pk]


def add_card_with_tiers_and_rewards(customer):
    program = make_program(make_merchant())
    Tier.objects.create(program=program, name="Base", threshold=0)
    Tier.objects.create(program=program, name="Top", threshold=1000, multiplier=2)
    for cost in (50, 500, 5000):
        Reward.objects.create(program=program, name=f"Reward {cost}", points_cost=cost)
    card = make_card(program, customer)
    buy(card, 10000)
    return card


def test_card_list_query_count_does_not_grow_with_the_number_of_cards(
    world, customer_client, django_assert_max_num_queries
):
    add_card_with_tiers_and_rewards(world.customer)
    with CaptureQueriesContext(connection) as two_cards:
        assert customer_client.get(CARDS).json()["count"] == 2
    queries_for_two = len(two_cards)  # read now: the next request clears the connection's query log
    for _ in range(6):
        add_card_with_tiers_and_rewards(world.customer)
    with django_assert_max_num_queries(queries_for_two):
        response = customer_client.get(CARDS)
    assert response.json()["count"] == 8
    assert all(card["next_reward"] is not None for card in response.json()["results"])


# Joining and leaving --------------------------------------------------------------------------------

def test_enrolling_twice_returns_the_same_card_and_pays_the_welcome_bonus_once(world, customer_client):
    program = make_program(world.merchant, welcome_bonus=50)
    entries_before = LedgerEntry.objects.count()

    first = customer_client.post(CARDS, {"program_id": program.pk}, format="json")
    assert first.status_code == 201
    assert first.json()["balance"] == 50 and first.json()["program"]["id"] == program.pk
    assert LedgerEntry.objects.count() == entries_before + 1

    second = customer_client.post(CARDS, {"program_id": program.pk}, format="json")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["balance"] == 50
    assert LedgerEntry.objects.count() == entries_before + 1
    assert Card.objects.filter(wallet=world.customer.wallet, program=program).count() == 1


@pytest.mark.parametrize("case", ["unknown", "inactive_program", "inactive_merchant"])
def test_enrolling_in_a_program_that_does_not_take_members_is_refused(world, customer_client, case):
    program = make_program(make_merchant(), welcome_bonus=50)
    if case == "inactive_program":
        program.is_active = False
        program.save()
    elif case == "inactive_merchant":
        program.merchant.is_active = False
        program.merchant.save()
    program_id = program.pk + 1000 if case == "unknown" else program.pk
    before = written_rows()
    error = assert_error(customer_client.post(CARDS, {"program_id": program_id}, format="json"), 400,
                         "validation_failed")
    assert "program_id" in error["fields"]
    assert written_rows() == before


@pytest.mark.parametrize("body", [{}, {"program_id": -1}, {"program_id": 0}, {"program_id": 10**30},
                                  {"program_id": "abc"}, {"program_id": 1.5}, {"program_id": None},
                                  "not an object"])
def test_enrolling_with_a_bad_program_id_is_a_400(world, customer_client, body):
    before = written_rows()
    assert_error(customer_client.post(CARDS, body, format="json"), 400, "validation_failed")
    assert written_rows() == before


def test_enrolling_with_an_unknown_field_is_a_400(world, customer_client):
    program = make_program(world.merchant, welcome_bonus=50)
    before = written_rows()
    error = assert_error(customer_client.post(CARDS, {"program_id": program.pk, "balance": 10_000}, format="json"),
                         400, "validation_failed")
    assert "balance" in error["fields"]
    assert written_rows() == before


def test_leaving_closes_the_card_and_keeps_its_history_readable(world, customer_client):
    buy(world.card, 25000)
    left = customer_client.post(card_url(world.card, "leave"), format="json")
    assert left.status_code == 200
    assert left.json()["status"] == "closed" and left.json()["closed_at"] is not None
    assert left.json()["balance"] == 250

    history = customer_client.get(card_url(world.card, "history"))
    assert history.status_code == 200
    assert [entry["delta"] for entry in history.json()["results"]] == [250]
    assert customer_client.get(CARDS).json()["results"][0]["status"] == "closed"
    # A closed card can redeem nothing, and is offered nothing.
    assert customer_client.get(card_url(world.card, "rewards")).json() == {"redeemable": [], "almost": []}
    assert_error(redeem(customer_client, world.card, world.coffee.pk, key="after-leaving"), 409, "card_closed")


def test_joining_again_after_leaving_reopens_the_same_card_without_a_second_bonus(customer_client, world):
    program = make_program(world.merchant, welcome_bonus=50)
    card_id = customer_client.post(CARDS, {"program_id": program.pk}, format="json").json()["id"]
    assert customer_client.post(f"{CARDS}{card_id}/leave/").status_code == 200
    entries_before = LedgerEntry.objects.count()
    rejoined = customer_client.post(CARDS, {"program_id": program.pk}, format="json")
    assert rejoined.status_code == 200
    assert rejoined.json()["id"] == card_id and rejoined.json()["status"] == "active"
    assert rejoined.json()["balance"] == 50
    assert LedgerEntry.objects.count() == entries_before


# History ----------------------------------------------------------------------------------------------

def test_history_is_newest_first_and_names_the_purchase_and_reward_of_each_entry(world, customer_client):
    buy(world.card, 12345, "till-7-0001", store_id=world.store.pk)
    coupon = redeem(customer_client, world.card, world.coffee.pk, key="coffee-1").json()["coupon"]

    entries = customer_client.get(card_url(world.card, "history")).json()["results"]
    assert [entry["kind"] for entry in entries] == ["redeem", "earn"]
    spent, earned = entries
    assert spent["delta"] == -100 and spent["balance_after"] == 23
    assert spent["purchase"] is None
    assert spent["reward"] == {"id": world.coffee.pk, "name": "Coffee", "coupon_id": coupon["id"],
                               "coupon_code": coupon["code"]}
    assert earned["delta"] == 123 and earned["balance_after"] == 123 and earned["reward"] is None
    assert earned["purchase"]["external_id"] == "till-7-0001"
    assert earned["purchase"]["amount"] == 12345 and earned["purchase"]["currency"] == "EUR"
    assert earned["purchase"]["store"] == world.store.name
    assert {"id", "kind", "delta", "balance_after", "occurred_at", "reason"} <= set(earned)


def test_history_of_a_purchase_without_a_store_has_no_store_name(world, customer_client):
    buy(world.card, 1000)
    entry = customer_client.get(card_url(world.card, "history")).json()["results"][0]
    assert entry["purchase"]["store"] is None


def test_history_pages_with_a_cursor_without_duplicates_even_while_entries_arrive(world, customer_client):
    for euros in range(1, 8):
        buy(world.card, euros * 100)
    first = customer_client.get(card_url(world.card, "history"), {"page_size": 3}).json()
    assert [entry["delta"] for entry in first["results"]] == [7, 6, 5]
    buy(world.card, 10000)  # a new entry must not shift the pages the client is walking

    seen, url = [entry["id"] for entry in first["results"]], first["next"]
    while url:
        parts = urlsplit(url)
        page = customer_client.get(f"{parts.path}?{parts.query}").json()
        seen += [entry["id"] for entry in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)
    assert first["previous"] is None


def test_history_query_count_does_not_grow_with_the_number_of_entries(
    world, customer_client, django_assert_max_num_queries
):
    buy(world.card, 100000, store_id=world.store.pk)
    assert redeem(customer_client, world.card, world.coffee.pk, key="k-1").status_code == 201
    with CaptureQueriesContext(connection) as few:
        customer_client.get(card_url(world.card, "history"))
    queries_for_two = len(few)  # read now: the next request clears the connection's query log
    for index in range(2, 8):
        buy(world.card, 1000, store_id=world.store.pk)
        assert redeem(customer_client, world.card, world.coffee.pk, key=f"k-{index}").status_code == 201
    with django_assert_max_num_queries(queries_for_two):
        response = customer_client.get(card_url(world.card, "history"))
    assert len(response.json()["results"]) == 14


# Rewards ----------------------------------------------------------------------------------------------

def test_rewards_split_into_redeemable_now_and_the_three_cheapest_almost_there(world, customer_client):
    for name, cost in [("Cake", 300), ("Lunch", 400), ("Brunch", 1000), ("Dinner", 2000)]:
        Reward.objects.create(program=world.program, name=name, points_cost=cost)
    Reward.objects.create(program=world.program, name="Retired", points_cost=150, is_active=False)
    Reward.objects.create(program=world.program, name="Sold out", points_cost=120, stock=0)
    Reward.objects.create(program=world.program, name="Last one", points_cost=200, stock=1)
    buy(world.card, 25000)  # 250 points

    rewards = customer_client.get(card_url(world.card, "rewards")).json()
    assert [(r["name"], r["points_needed"]) for r in rewards["redeemable"]] == [("Coffee", 0), ("Last one", 0)]
    assert [(r["name"], r["points_needed"]) for r in rewards["almost"]] == [
        ("Cake", 50), ("Lunch", 150), ("Brunch", 750)
    ]
    assert rewards["redeemable"][0] == {"id": world.coffee.pk, "name": "Coffee", "kind": "free_item", "value": 0,
                                        "points_cost": 100, "points_needed": 0}


# Redeeming ----------------------------------------------------------------------------------------------

def test_redeeming_spends_points_and_issues_a_coupon(world, customer_client):
    buy(world.card, 25000)
    response = redeem(customer_client, world.card, world.coffee.pk, key=str(uuid.uuid4()))
    assert response.status_code == 201
    body = response.json()
    assert body["balance"] == 150
    coupon = body["coupon"]
    assert coupon["status"] == "issued" and coupon["is_usable"] is True and coupon["points"] == 100
    assert coupon["reward"] == {"id": world.coffee.pk, "name": "Coffee"}
    assert coupon["code"] == Redemption.objects.get(pk=coupon["id"]).coupon_code
    assert coupon["expires_at"]
    assert "Idempotent-Replayed" not in response
    assert customer_client.get(card_url(world.card)).json()["balance"] == 150


def test_redeeming_twice_with_the_same_key_spends_once_and_answers_the_same(world, customer_client):
    buy(world.card, 25000)
    first = redeem(customer_client, world.card, world.coffee.pk, key="redeem-7f3a")
    before = written_rows()
    retry = redeem(customer_client, world.card, world.coffee.pk, key="redeem-7f3a")
    assert retry.status_code == first.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert written_rows() == before
    assert world.card.entries.filter(kind=LedgerEntry.Kind.REDEEM).count() == 1
    assert Card.objects.get(pk=world.card.pk).balance == 150


def test_same_key_with_a_different_reward_is_a_conflict_and_writes_nothing(world, customer_client):
    cake = Reward.objects.create(program=world.program, name="Cake", points_cost=120)
    buy(world.card, 25000)
    redeem(customer_client, world.card, world.coffee.pk, key="redeem-1")
    before = written_rows()
    assert_error(redeem(customer_client, world.card, cake.pk, key="redeem-1"), 409, "idempotency_key_reused")
    assert written_rows() == before
    assert Card.objects.get(pk=world.card.pk).balance == 150


def test_keys_of_two_customers_never_collide(world, customer_client):
    neighbour = make_customer()
    neighbour_card = make_card(world.program, neighbour)
    buy(world.card, 25000)
    buy(neighbour_card, 25000)
    assert redeem(customer_client, world.card, world.coffee.pk, key="1").status_code == 201
    assert redeem(client_for(neighbour.user), neighbour_card, world.coffee.pk, key="1").status_code == 201
    assert Card.objects.get(pk=neighbour_card.pk).balance == 150


@pytest.mark.parametrize("key", [None, "", "   ", "k" * 256])
def test_redeeming_needs_an_idempotency_key_of_1_to_255_characters(world, customer_client, key):
    buy(world.card, 25000)
    before = written_rows()
    error = assert_error(redeem(customer_client, world.card, world.coffee.pk, key=key), 400, "invalid_request")
    assert "Idempotency-Key" in error["fields"]
    assert written_rows() == before


def test_a_255_character_key_is_accepted_and_replays(world, customer_client):
    buy(world.card, 25000)
    key = "k" * 255
    first = redeem(customer_client, world.card, world.coffee.pk, key=key)
    retry = redeem(customer_client, world.card, world.coffee.pk, key=key)
    assert first.status_code == 201 and retry.json() == first.json()
    assert world.card.entries.filter(kind=LedgerEntry.Kind.REDEEM).count() == 1


def test_redeeming_without_enough_points_is_a_conflict_and_writes_nothing(world, customer_client):
    buy(world.card, 9999)  # 99 points, the coffee costs 100
    before = written_rows()
    assert_error(redeem(customer_client, world.card, world.coffee.pk, key="too-soon"), 409, "insufficient_points")
    assert written_rows() == before
    # The refusal is not stored: once the points are there, the same key succeeds.
    buy(world.card, 100)
    assert redeem(customer_client, world.card, world.coffee.pk, key="too-soon").status_code == 201


def test_redeeming_an_inactive_reward_is_a_conflict(world, customer_client):
    buy(world.card, 25000)
    world.coffee.is_active = False
    world.coffee.save()
    before = written_rows()
    assert_error(redeem(customer_client, world.card, world.coffee.pk, key="k"), 409, "reward_unavailable")
    assert written_rows() == before


def test_redeeming_a_reward_of_another_program_is_a_400(world, customer_client):
    elsewhere = Reward.objects.create(program=make_program(make_merchant()), name="Elsewhere", points_cost=1)
    buy(world.card, 25000)
    before = written_rows()
    error = assert_error(redeem(customer_client, world.card, elsewhere.pk, key="k"), 400, "validation_failed")
    assert "reward_id" in error["fields"]
    assert written_rows() == before


@pytest.mark.parametrize("body", [
    {}, {"reward_id": -1}, {"reward_id": 0}, {"reward_id": 10**30}, {"reward_id": 2**63}, {"reward_id": "abc"},
    {"reward_id": 1.5}, {"reward_id": True}, {"reward_id": None}, {"reward_id": [1]}, "coffee", [],
])
def test_redeeming_with_a_bad_reward_id_is_a_400_and_writes_nothing(world, customer_client, body):
    buy(world.card, 25000)
    before = written_rows()
    response = customer_client.post(card_url(world.card, "redemptions"), body, format="json",
                                    HTTP_IDEMPOTENCY_KEY="bad-body")
    assert_error(response, 400, "validation_failed")
    assert written_rows() == before


def test_redeeming_with_an_unknown_field_is_a_400_and_writes_nothing(world, customer_client):
    buy(world.card, 25000)
    before = written_rows()
    response = customer_client.post(card_url(world.card, "redemptions"), {"reward_id": world.coffee.pk, "points": 1},
                                    format="json", HTTP_IDEMPOTENCY_KEY="smuggle")
    error = assert_error(response, 400, "validation_failed")
    assert "points" in error["fields"]
    assert written_rows() == before


# Whose card ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, action, body", [
    ("get", "", None),
    ("get", "history", None),
    ("get", "rewards", None),
    ("post", "leave", None),
    ("post", "redemptions", "reward"),
])
def test_another_customers_card_is_not_found_and_nothing_is_written(
    world, other_customer_client, method, action, body
):
    buy(world.card, 25000)
    before = written_rows()
    data = {"reward_id": world.coffee.pk} if body else None
    response = getattr(other_customer_client, method)(
        card_url(world.card, action), data, format="json", HTTP_IDEMPOTENCY_KEY="someone-elses"
    )
    assert_error(response, 404, "not_found")
    assert written_rows() == before
    assert Card.objects.get(pk=world.card.pk).status == Card.Status.ACTIVE


@pytest.mark.parametrize("path", [CARDS, "/api/v1/cards/1/", "/api/v1/cards/1/history/"])
def test_cards_need_a_logged_in_customer(world, anon_client, path):
    assert_error(anon_client.get(path), 401, "not_authenticated")


@pytest.mark.parametrize("card_id", [0, 10**25])
def test_card_ids_out_of_range_are_not_found(world, customer_client, card_id):
    assert_error(customer_client.get(f"{CARDS}{card_id}/"), 404, "not_found")
    assert_error(customer_client.get(f"{CARDS}{card_id}/history/"), 404, "not_found")
