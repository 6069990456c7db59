"""When an offer holds: its period, its stores, its weekdays and hours on the store's own clock (a window
past midnight belongs to the day it started), and for which card (audience, a welcome offer's age)."""
import datetime as dt
from decimal import Decimal

import pytest

from engagement.models import Audience, Offer
from engagement.offers import closes_at, offer_is_open, valid_offers
from merchants.models import Store
from tests.factories import build_world, make_card, make_customer, make_store
from wallet.models import Card
from wallet.services import leave_program

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# Monday 2 March 2026. Paris is UTC+1 then, Tokyo UTC+9 (neither has DST in March before the 29th).
MONDAY = dt.datetime(2026, 3, 2, tzinfo=UTC)


def make_offer(merchant, *, stores=(), **fields) -> Offer:
    """A double-points offer valid from a week before MONDAY with no end, unless `fields` say otherwise."""
    values = {"title": "Double points", "kind": Offer.Kind.MULTIPLIER, "multiplier": Decimal("2"),
              "valid_from": MONDAY - dt.timedelta(days=7)}
    values.update(fields)
    offer = Offer.objects.create(merchant=merchant, **values)
    offer.stores.set(stores)
    return offer


def store_in(merchant, time_zone: str, *, latitude="48.8566", longitude="2.3522", name=None) -> Store:
    return Store.objects.create(merchant=merchant, name=name or f"Store in {time_zone}", time_zone=time_zone,
                                latitude=Decimal(latitude), longitude=Decimal(longitude))


def reloaded(offer: Offer) -> Offer:
    return Offer.objects.select_related("merchant").prefetch_related("stores").get(pk=offer.pk)


def test_a_breakfast_window_is_read_on_each_stores_own_clock(world):
    tokyo = store_in(world.merchant, "Asia/Tokyo", latitude="35.6812", longitude="139.7671")
    breakfast = reloaded(make_offer(world.merchant, daily_start=dt.time(7), daily_end=dt.time(10)))
    nine_in_tokyo = MONDAY  # 09:00 in Tokyo, 01:00 in Paris
    three_pm_in_tokyo = MONDAY + dt.timedelta(hours=6)  # 15:00 in Tokyo, 07:00 in Paris
    assert offer_is_open(breakfast, store=tokyo, now=nine_in_tokyo)
    assert not offer_is_open(breakfast, store=world.store, now=nine_in_tokyo)
    assert not offer_is_open(breakfast, store=tokyo, now=three_pm_in_tokyo)
    assert offer_is_open(breakfast, store=world.store, now=three_pm_in_tokyo)
    # The window's end is exclusive: 10:00 in Tokyo is over.
    assert not offer_is_open(breakfast, store=tokyo, now=MONDAY + dt.timedelta(hours=1))
    assert closes_at(breakfast, tokyo, nine_in_tokyo) == dt.datetime(2026, 3, 2, 1, tzinfo=UTC)


def test_a_late_window_past_midnight_belongs_to_the_weekday_it_started_on(world):
    friday_nights = reloaded(make_offer(world.merchant, weekdays=[4], daily_start=dt.time(22), daily_end=dt.time(2)))

    def paris(day, hour, minute=0):
        return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC) - dt.timedelta(hours=1)  # Paris wall clock

    assert offer_is_open(friday_nights, store=world.store, now=paris(6, 23))  # Friday 23:00
    assert offer_is_open(friday_nights, store=world.store, now=paris(7, 1, 30))  # Saturday 01:30, Friday's night
    assert not offer_is_open(friday_nights, store=world.store, now=paris(7, 2))  # the window has ended
    assert not offer_is_open(friday_nights, store=world.store, now=paris(6, 1, 30))  # Thursday's night
    assert not offer_is_open(friday_nights, store=world.store, now=paris(7, 22, 30))  # Saturday evening
    assert not offer_is_open(friday_nights, store=world.store, now=paris(6, 21, 59))
    assert closes_at(friday_nights, world.store, paris(6, 23)) == paris(7, 2)


def test_weekdays_without_hours_hold_all_day_on_the_store_clock(world):
    tokyo = store_in(world.merchant, "Asia/Tokyo")
    mondays = reloaded(make_offer(world.merchant, weekdays=[0]))
    sunday_evening_utc = MONDAY - dt.timedelta(hours=2)  # already Monday 07:00 in Tokyo, still Sunday in Paris
    assert offer_is_open(mondays, store=tokyo, now=sunday_evening_utc)
    assert not offer_is_open(mondays, store=world.store, now=sunday_evening_utc)
    assert closes_at(mondays, tokyo, sunday_evening_utc) == dt.datetime(2026, 3, 2, 15, tzinfo=UTC)  # Tuesday 0:00


def test_the_period_starts_inclusive_and_ends_exclusive_and_an_inactive_offer_never_holds(world):
    start, end = MONDAY, MONDAY + dt.timedelta(days=3)
    offer = reloaded(make_offer(world.merchant, valid_from=start, valid_until=end))
    assert not offer_is_open(offer, store=world.store, now=start - dt.timedelta(seconds=1))
    assert offer_is_open(offer, store=world.store, now=start)
    assert offer_is_open(offer, store=world.store, now=end - dt.timedelta(seconds=1))
    assert not offer_is_open(offer, store=world.store, now=end)
    Offer.objects.filter(pk=offer.pk).update(is_active=False)
    assert not offer_is_open(reloaded(offer), store=world.store, now=start)


def test_store_limits_hold_only_at_their_stores_and_a_sale_without_a_store_gets_only_every_store_offers(world):
    other_store = make_store(world.merchant)
    here_only = reloaded(make_offer(world.merchant, stores=[world.store]))
    everywhere = reloaded(make_offer(world.merchant))
    assert offer_is_open(here_only, store=world.store, now=MONDAY)
    assert not offer_is_open(here_only, store=other_store, now=MONDAY)
    assert not offer_is_open(here_only, store=None, now=MONDAY)
    assert offer_is_open(everywhere, store=other_store, now=MONDAY)
    assert offer_is_open(everywhere, store=None, now=MONDAY)
    assert not offer_is_open(everywhere, store=build_world().store, now=MONDAY)  # another merchant's store


def test_valid_offers_of_a_card_are_its_merchants_open_ones_for_its_audience(world):
    open_now = make_offer(world.merchant, title="All day")
    make_offer(world.merchant, title="Tomorrow", valid_from=MONDAY + dt.timedelta(days=1))
    make_offer(world.merchant, title="Elsewhere", stores=[make_store(world.merchant)])
    gold_only = Audience.objects.create(merchant=world.merchant, name="Gold members")
    gold_only.tiers.set([world.gold])
    make_offer(world.merchant, title="Gold", audience=gold_only)
    make_offer(build_world().merchant, title="Another merchant's")

    assert [o.title for o in valid_offers(world.card, now=MONDAY, store=world.store)] == ["All day"]
    Card.objects.filter(pk=world.card.pk).update(tier=world.gold)
    gold_card = Card.objects.get(pk=world.card.pk)
    assert [o.title for o in valid_offers(gold_card, now=MONDAY, store=world.store)] == ["All day", "Gold"]
    assert valid_offers(gold_card, now=MONDAY, store=world.store)[0] == open_now
    leave_program(gold_card)
    assert valid_offers(Card.objects.get(pk=world.card.pk), now=MONDAY, store=world.store) == []


def test_a_welcome_offer_holds_only_while_the_card_is_younger_than_its_days(world):
    make_offer(world.merchant, title="Welcome coffee", kind=Offer.Kind.DISCOUNT, multiplier=None,
               discount_text="Free coffee", is_welcome=True, welcome_valid_days=7)
    make_offer(world.merchant, title="For everyone")
    new_card = make_card(world.program, make_customer())
    Card.objects.filter(pk=new_card.pk).update(created_at=MONDAY - dt.timedelta(days=6, hours=23))
    Card.objects.filter(pk=world.card.pk).update(created_at=MONDAY - dt.timedelta(days=7))
    assert [o.title for o in valid_offers(Card.objects.get(pk=new_card.pk), now=MONDAY)] == [
        "Welcome coffee", "For everyone"]
    assert [o.title for o in valid_offers(Card.objects.get(pk=world.card.pk), now=MONDAY)] == ["For everyone"]
