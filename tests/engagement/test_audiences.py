"""Audiences: each rule picks exactly the members planted for it, alone and combined, through the set
query (audience_cards) and the one-card check (card_matches) alike."""
import datetime as dt
import itertools
from decimal import Decimal

import pytest

from engagement.audiences import audience_cards, audience_size, card_matches
from engagement.models import Audience
from merchants.models import Reward, Tier
from merchants.selectors import haversine_m
from tests.engagement.conftest import Shop, make_member, utc
from tests.factories import make_card, make_program
from wallet.models import Card, Customer
from wallet.services import PurchaseRequest, adjust_points, erase_customer, leave_program, record_purchase

pytestmark = pytest.mark.django_db

NOW = utc(2026, 3, 15, 12, 0)
_keys = itertools.count(1)


def member(shop: Shop, time_zone="UTC", **customer_fields) -> Card:
    customer = make_member(shop, time_zone, opt_in=())
    if customer_fields:
        Customer.objects.filter(pk=customer.pk).update(**customer_fields)
    return Card.objects.get(wallet__customer=customer, merchant=shop.merchant)


def buy(card: Card, when: dt.datetime, *, amount=100, items=()) -> None:
    n = next(_keys)
    record_purchase(card, PurchaseRequest(external_id=f"sale-{n}", amount=amount, currency="USD", items=list(items),
                                          occurred_at=when), idempotency_key=f"buy-{n}", source="pos")


def give(card: Card, points: int) -> None:
    adjust_points(card, delta=points, reason="test", actor=None, idempotency_key=f"give-{next(_keys)}")


def enrolled(card: Card, when: dt.datetime) -> None:
    Card.objects.filter(pk=card.pk).update(created_at=when)  # backdate the enrolment


def audience(shop: Shop, tiers=(), **rules) -> Audience:
    created = Audience.objects.create(merchant=shop.merchant, name="Test audience", **rules)
    created.tiers.set(tiers)
    return created


def chosen(target: Audience, shop: Shop, now=NOW) -> set[int]:
    """The members picked by the set query, after checking the one-card check agrees on every card."""
    picked = {card.pk for card in audience_cards(shop.merchant, target, now=now)}
    one_by_one = {card.pk for card in Card.objects.filter(merchant=shop.merchant)
                  if card_matches(target, card, now=now)}
    assert one_by_one == picked
    return picked


def test_no_audience_is_every_active_member_of_the_merchant_only(shop, other_shop):
    kept, closed, erased = member(shop), member(shop), member(shop)
    member(other_shop)
    leave_program(closed)
    erase_customer(erased.wallet.customer)
    assert {card.pk for card in audience_cards(shop.merchant, None, now=NOW)} == {kept.pk}
    assert card_matches(None, kept, now=NOW) and not card_matches(None, closed, now=NOW)
    everyone = audience(shop)
    assert chosen(everyone, shop) == {kept.pk}


def test_tiers_pick_members_of_any_chosen_tier(shop):
    silver = Tier.objects.create(program=shop.program, name="Silver", threshold=100)
    gold = Tier.objects.create(program=shop.program, name="Gold", threshold=500)
    platinum = Tier.objects.create(program=shop.program, name="Platinum", threshold=2000)
    in_silver, in_gold, in_platinum, in_none = member(shop), member(shop), member(shop), member(shop)
    buy(in_silver, NOW, amount=15000)
    buy(in_gold, NOW, amount=60000)
    buy(in_platinum, NOW, amount=250000)
    assert chosen(audience(shop, tiers=[gold, platinum]), shop) == {in_gold.pk, in_platinum.pk}
    assert chosen(audience(shop, tiers=[silver]), shop) == {in_silver.pk}
    assert in_none.pk in chosen(audience(shop), shop)


def test_min_and_max_balance_bound_the_balance_inclusively(shop):
    cards = {points: member(shop) for points in (0, 49, 50, 200, 201)}
    for points, card in cards.items():
        if points:
            give(card, points)
    assert chosen(audience(shop, min_balance=50), shop) == {cards[50].pk, cards[200].pk, cards[201].pk}
    assert chosen(audience(shop, max_balance=49), shop) == {cards[0].pk, cards[49].pk}
    assert chosen(audience(shop, min_balance=50, max_balance=200), shop) == {cards[50].pk, cards[200].pk}


def test_can_redeem_means_the_balance_reaches_the_cheapest_active_reward_in_stock(shop):
    Reward.objects.create(program=shop.program, name="Retired mug", points_cost=10, is_active=False)
    Reward.objects.create(program=shop.program, name="Sold-out tote", points_cost=20, stock=0)
    Reward.objects.create(program=shop.program, name="Coffee", points_cost=100, stock=5)
    Reward.objects.create(program=shop.program, name="Cake", points_cost=300)
    short, exact, rich = member(shop), member(shop), member(shop)
    give(short, 99)
    give(exact, 100)
    give(rich, 1000)
    assert chosen(audience(shop, can_redeem=True), shop) == {exact.pk, rich.pk}


def test_a_program_without_rewards_has_nobody_who_can_redeem_or_is_near_one(shop):
    card = member(shop)
    give(card, 500)
    assert chosen(audience(shop, can_redeem=True), shop) == set()
    assert chosen(audience(shop, near_reward_points=1000), shop) == set()


def test_near_reward_is_within_n_points_of_the_cheapest_reward_still_out_of_reach(shop):
    Reward.objects.create(program=shop.program, name="Coffee", points_cost=100)
    Reward.objects.create(program=shop.program, name="Cake", points_cost=300)
    Reward.objects.create(program=shop.program, name="Old", points_cost=95, is_active=False)
    balances = (80, 90, 99, 100, 250, 295, 400)
    cards = {points: member(shop) for points in balances}
    for points, card in cards.items():
        give(card, points)
    # 90 and 99 are 10 and 1 short of the coffee; 295 can afford the coffee and is 5 short of the cake.
    # 100 can afford the coffee but the cake is 200 away; 400 can afford everything: nothing is near.
    assert chosen(audience(shop, near_reward_points=10), shop) == {cards[90].pk, cards[99].pk, cards[295].pk}


def test_away_at_least_counts_from_the_last_purchase_or_else_from_enrolment(shop):
    away_long, back_lately, never_bought_old, never_bought_new = member(shop), member(shop), member(shop), member(shop)
    buy(away_long, NOW - dt.timedelta(days=60))
    buy(back_lately, NOW - dt.timedelta(days=60))
    buy(back_lately, NOW - dt.timedelta(days=3))
    enrolled(never_bought_old, NOW - dt.timedelta(days=45))
    enrolled(never_bought_new, NOW - dt.timedelta(days=5))
    assert chosen(audience(shop, min_days_since_visit=30), shop) == {away_long.pk, never_bought_old.pk}


def test_a_purchase_after_the_moment_looked_at_does_not_count(shop):
    card = member(shop)
    enrolled(card, NOW - dt.timedelta(days=90))
    buy(card, NOW - dt.timedelta(days=40))
    buy(card, NOW + dt.timedelta(days=1))
    assert chosen(audience(shop, min_days_since_visit=30), shop) == {card.pk}


def test_visited_within_needs_a_purchase_in_the_last_n_days(shop):
    recent, exactly_on_the_edge, long_ago, never = member(shop), member(shop), member(shop), member(shop)
    buy(recent, NOW - dt.timedelta(days=2))
    buy(exactly_on_the_edge, NOW - dt.timedelta(days=7))
    buy(long_ago, NOW - dt.timedelta(days=8))
    enrolled(never, NOW - dt.timedelta(days=1))  # a recent enrolment is not a visit
    assert chosen(audience(shop, max_days_since_visit=7), shop) == {recent.pk, exactly_on_the_edge.pk}


def test_min_visits_counts_purchases_inside_the_window_only(shop):
    regular, lapsed, once = member(shop), member(shop), member(shop)
    for days in (1, 10, 20):
        buy(regular, NOW - dt.timedelta(days=days))
    for days in (1, 40, 50):
        buy(lapsed, NOW - dt.timedelta(days=days))
    buy(once, NOW - dt.timedelta(days=1))
    assert chosen(audience(shop, min_visits=3, visits_window_days=30), shop) == {regular.pk}
    assert chosen(audience(shop, min_visits=3, visits_window_days=60), shop) == {regular.pk, lapsed.pk}
    assert chosen(audience(shop, min_visits=1, visits_window_days=30), shop) == {regular.pk, lapsed.pk, once.pk}


def test_birthday_this_month_is_read_on_each_customers_own_calendar_at_a_month_boundary(shop):
    # 03:00 UTC on 1 April 2026: still 31 March (23:00) in New York, already 1 April in Tokyo and London.
    now = utc(2026, 4, 1, 3, 0)
    new_york_march = member(shop, "America/New_York", birth_month=3, birth_day=31)
    new_york_april = member(shop, "America/New_York", birth_month=4, birth_day=1)
    tokyo_april = member(shop, "Asia/Tokyo", birth_month=4, birth_day=2)
    tokyo_march = member(shop, "Asia/Tokyo", birth_month=3, birth_day=20)
    london_april = member(shop, "Europe/London", birth_month=4, birth_day=30)
    member(shop, "Asia/Tokyo")  # no birthday given
    unknown_zone_april = member(shop, "UTC", birth_month=4, birth_day=9)
    Customer.objects.filter(wallet__cards=unknown_zone_april).update(time_zone="Mars/Olympus_Mons")  # read as UTC
    assert chosen(audience(shop, birthday_this_month=True), shop, now=now) == {
        new_york_march.pk, tokyo_april.pk, london_april.pk, unknown_zone_april.pk}
    # Five hours later New York has turned the page too.
    assert chosen(audience(shop, birthday_this_month=True), shop, now=now + dt.timedelta(hours=5)) == {
        new_york_april.pk, tokyo_april.pk, london_april.pk, unknown_zone_april.pk}
    assert not card_matches(audience(shop, birthday_this_month=True), tokyo_march, now=now)


def test_purchase_categories_match_any_line_of_any_purchase_case_insensitively(shop):
    pastry_fan, beans_buyer, coffee_only, no_items, odd_items = (member(shop) for _ in range(5))
    buy(pastry_fan, NOW - dt.timedelta(days=100), items=[
        {"name": "Espresso", "category": "coffee"}, {"name": "Croissant", "category": "Pastry"}])
    buy(beans_buyer, NOW - dt.timedelta(days=1), items=[{"name": "Ethiopia 250 g", "category": "COFFEE BEANS"}])
    buy(coffee_only, NOW - dt.timedelta(days=1), items=[{"name": "Latte", "category": "coffee"},
                                                         {"name": "Pastry box", "sku": "pastry"}])
    buy(no_items, NOW - dt.timedelta(days=1))
    buy(odd_items, NOW - dt.timedelta(days=1), items=["pastry", 7, {"category": None}, {"category": ["pastry"]}])
    rule = audience(shop, purchase_categories=[" pastry", "Coffee Beans", ""])
    assert chosen(rule, shop) == {pastry_fan.pk, beans_buyer.pk}


# Paris, and points at known distances from it (checked with haversine_m below).
STORE = (Decimal("48.856600"), Decimal("2.352200"))
HOME_3_KM_NORTH = (Decimal("48.883580"), Decimal("2.352200"))
SEEN_4_KM_EAST = (Decimal("48.856600"), Decimal("2.406890"))
SIX_KM_SOUTH = (Decimal("48.802640"), Decimal("2.352200"))
BOX_CORNER = (Decimal("48.897000"), Decimal("2.413500"))  # 4.5 km north and 4.5 km east: 6.3 km away


def _km(point) -> float:
    return haversine_m(float(STORE[0]), float(STORE[1]), float(point[0]), float(point[1])) / 1000


def test_near_store_takes_home_or_last_seen_location_within_the_exact_radius(shop):
    assert _km(HOME_3_KM_NORTH) < 5 and _km(SEEN_4_KM_EAST) < 5
    assert _km(SIX_KM_SOUTH) > 5 and _km(BOX_CORNER) > 5
    shop.store.latitude, shop.store.longitude = STORE
    shop.store.save()
    at_home = member(shop, home_latitude=HOME_3_KM_NORTH[0], home_longitude=HOME_3_KM_NORTH[1])
    seen_near = member(shop, home_latitude=SIX_KM_SOUTH[0], home_longitude=SIX_KM_SOUTH[1],
                       last_seen_latitude=SEEN_4_KM_EAST[0], last_seen_longitude=SEEN_4_KM_EAST[1], last_seen_at=NOW)
    member(shop, home_latitude=SIX_KM_SOUTH[0], home_longitude=SIX_KM_SOUTH[1])
    member(shop, last_seen_latitude=BOX_CORNER[0], last_seen_longitude=BOX_CORNER[1], last_seen_at=NOW)
    member(shop)  # no location at all
    rule = audience(shop, near_store=shop.store, radius_km=Decimal("5"))
    assert chosen(rule, shop) == {at_home.pk, seen_near.pk}
    rule.radius_km = Decimal("6.5")
    rule.save()
    assert len(chosen(rule, shop)) == 4


def test_near_store_across_the_antimeridian(shop):
    shop.store.latitude, shop.store.longitude = Decimal("-16.5"), Decimal("179.99")
    shop.store.save()
    across = member(shop, home_latitude=Decimal("-16.5"), home_longitude=Decimal("-179.99"))  # about 2 km east
    member(shop, home_latitude=Decimal("-16.5"), home_longitude=Decimal("179.9"))  # about 10 km west
    assert chosen(audience(shop, near_store=shop.store, radius_km=Decimal("3")), shop) == {across.pk}


def test_a_store_without_a_location_is_near_nobody(shop):
    shop.store.latitude = shop.store.longitude = None
    shop.store.save()
    member(shop, home_latitude=STORE[0], home_longitude=STORE[1])
    assert chosen(audience(shop, near_store=shop.store, radius_km=Decimal("5")), shop) == set()


def test_rules_combine_with_and(shop):
    gold = Tier.objects.create(program=shop.program, name="Gold", threshold=500)
    wanted, not_gold, no_pastry, lapsed = member(shop), member(shop), member(shop), member(shop)
    pastry = [{"name": "Croissant", "category": "pastry"}]
    buy(wanted, NOW - dt.timedelta(days=3), amount=60000, items=pastry)
    buy(not_gold, NOW - dt.timedelta(days=3), amount=10000, items=pastry)
    buy(no_pastry, NOW - dt.timedelta(days=3), amount=60000)
    buy(lapsed, NOW - dt.timedelta(days=40), amount=60000, items=pastry)
    rule = audience(shop, tiers=[gold], min_balance=100, max_days_since_visit=14, purchase_categories=["pastry"])
    assert chosen(rule, shop) == {wanted.pk}


def test_an_audience_of_another_merchant_selects_nobody_here(shop, other_shop):
    card = member(shop)
    foreign = Audience.objects.create(merchant=other_shop.merchant, name="Theirs")
    assert not audience_cards(shop.merchant, foreign, now=NOW).exists()
    assert not card_matches(foreign, card, now=NOW)


def test_size_counts_each_customer_once_and_previews_unsaved_tiers(shop):
    gold = Tier.objects.create(program=shop.program, name="Gold", threshold=500)
    twice = member(shop)
    make_card(make_program(shop.merchant), twice.wallet.customer)  # a second program of the same merchant
    member(shop)
    everyone = audience(shop)
    assert audience_cards(shop.merchant, everyone, now=NOW).count() == 3
    assert audience_size(shop.merchant, everyone, now=NOW) == 2
    assert audience_size(shop.merchant, everyone, now=NOW, tier_ids=[gold.pk]) == 0


def test_choosing_among_many_members_takes_a_fixed_number_of_queries(shop, django_assert_max_num_queries):
    gold = Tier.objects.create(program=shop.program, name="Gold", threshold=0)
    Reward.objects.create(program=shop.program, name="Coffee", points_cost=10)
    for n in range(25):
        card = member(shop, "Asia/Tokyo" if n % 2 else "America/Chicago", birth_month=3, birth_day=1,
                      home_latitude=STORE[0], home_longitude=STORE[1])
        buy(card, NOW - dt.timedelta(days=1), amount=5000, items=[{"category": "pastry"}])
    shop.store.latitude, shop.store.longitude = STORE
    shop.store.save()
    rule = audience(shop, tiers=[gold], min_balance=1, max_balance=10000, can_redeem=True, near_reward_points=None,
                    max_days_since_visit=30, min_visits=1, birthday_this_month=True, purchase_categories=["pastry"],
                    near_store=shop.store, radius_km=Decimal("1"))
    with django_assert_max_num_queries(3):  # the tiers, the members' time zones, the members
        assert len(list(audience_cards(shop.merchant, rule, now=NOW))) == 25
