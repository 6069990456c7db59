"""Scheduling a campaign: one planned message per member at the member's own local send time, refused
with a reason when it could not go out as the merchant expects, and never planned twice."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from engagement.campaigns import cancel_campaign, local_send_time, schedule_campaign
from engagement.models import Campaign, Message
from tests.engagement.conftest import make_campaign, make_member, make_offer, utc
from tests.factories import make_card, make_program
from wallet.errors import InvalidRequest
from wallet.models import Card

pytestmark = pytest.mark.django_db

BEFORE = utc(2026, 12, 1, 12, 0)  # a week before the campaign date


@pytest.mark.parametrize(
    ("send_on", "send_at", "zone", "expected"),
    [
        (dt.date(2026, 12, 7), dt.time(10), "America/New_York", utc(2026, 12, 7, 15)),  # EST, UTC-5
        (dt.date(2026, 12, 7), dt.time(10), "Pacific/Honolulu", utc(2026, 12, 7, 20)),  # HST, UTC-10
        (dt.date(2026, 7, 7), dt.time(10), "America/New_York", utc(2026, 7, 7, 14)),  # EDT, UTC-4
        (dt.date(2026, 12, 7), dt.time(10), "Asia/Kolkata", utc(2026, 12, 7, 4, 30)),  # half-hour zone
        # 02:30 does not exist on the spring-forward day: it moves forward by the gap, to 03:30 EDT.
        (dt.date(2026, 3, 8), dt.time(2, 30), "America/New_York", utc(2026, 3, 8, 7, 30)),
        # 01:30 happens twice on the fall-back day: the first one (still EDT).
        (dt.date(2026, 11, 1), dt.time(1, 30), "America/New_York", utc(2026, 11, 1, 5, 30)),
    ],
)
def test_local_send_time_is_the_recipients_wall_clock(send_on, send_at, zone, expected):
    assert local_send_time(send_on, send_at, zone) == expected


def test_one_message_per_member_at_each_members_local_ten(shop):
    new_york = make_member(shop, "America/New_York")
    honolulu = make_member(shop, "Pacific/Honolulu")
    campaign = make_campaign(shop, channels=["email", "sms"])

    planned = schedule_campaign(campaign, now=BEFORE)

    assert planned == 2 and planned.passed == 0
    due = dict(Message.objects.filter(campaign=campaign).values_list("customer_id", "due_at"))
    assert due == {new_york.pk: utc(2026, 12, 7, 15), honolulu.pk: utc(2026, 12, 7, 20)}
    message = Message.objects.get(customer=new_york)
    assert (message.kind, message.channels, message.offer_id, message.status) == (
        "campaign", ["email", "sms"], campaign.offer_id, "pending")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED and campaign.scheduled_at == BEFORE


def test_a_member_with_two_cards_of_the_merchant_gets_one_message(shop):
    customer = make_member(shop, "America/New_York")
    make_card(make_program(shop.merchant, name="Pastry club"), customer)
    assert Card.objects.filter(merchant=shop.merchant, wallet__customer=customer).count() == 2

    assert schedule_campaign(make_campaign(shop), now=BEFORE) == 1
    assert Message.objects.filter(customer=customer).count() == 1


def test_scheduling_twice_plans_nothing_new_and_a_later_member_is_added(shop):
    make_member(shop, "America/New_York")
    campaign = make_campaign(shop)
    assert schedule_campaign(campaign, now=BEFORE) == 1

    assert schedule_campaign(campaign, now=BEFORE) == 0
    assert Message.objects.filter(campaign=campaign).count() == 1

    make_member(shop, "Europe/Paris")
    assert schedule_campaign(campaign, now=BEFORE) == 1
    assert Message.objects.filter(campaign=campaign).count() == 2


def test_members_whose_local_time_passed_are_left_out_and_counted(shop):
    new_york = make_member(shop, "America/New_York")  # 10:00 EST is 15:00 UTC: passed at 16:00
    honolulu = make_member(shop, "Pacific/Honolulu")  # 10:00 HST is 20:00 UTC: still ahead

    planned = schedule_campaign(make_campaign(shop), now=utc(2026, 12, 7, 16))

    assert planned == 1 and planned.passed == 1
    assert list(Message.objects.values_list("customer_id", flat=True)) == [honolulu.pk]
    assert not Message.objects.filter(customer=new_york).exists()


def test_send_time_passed_for_every_recipient_is_refused(shop):
    make_member(shop, "America/New_York")
    make_member(shop, "Pacific/Honolulu")
    campaign = make_campaign(shop)

    with pytest.raises(InvalidRequest, match="already passed for every recipient"):
        schedule_campaign(campaign, now=utc(2026, 12, 7, 20, 1))

    assert not Message.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def _refusal(campaign) -> str:
    with pytest.raises(InvalidRequest) as refusal:
        schedule_campaign(campaign, now=BEFORE)
    assert not Message.objects.filter(campaign=campaign).exists()
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT
    return refusal.value.message


def test_refusals_say_why(shop, other_shop):
    make_member(shop, "America/New_York")
    assert _refusal(make_campaign(shop, channels=[])) == "Choose at least one channel."
    assert _refusal(make_campaign(shop, channels=["email", "fax"])) == "Unknown channel: fax."
    assert _refusal(make_campaign(shop, offer=make_offer(other_shop))) == "The offer belongs to another merchant."
    assert _refusal(make_campaign(shop, offer=make_offer(shop, is_active=False))) == "The offer is not active."
    ended = make_offer(shop, valid_until=utc(2026, 11, 30))
    assert _refusal(make_campaign(shop, offer=ended)) == "The offer has already ended."


def test_an_empty_audience_is_refused(shop):
    assert "no members" in _refusal(make_campaign(shop))


def test_a_cancelled_campaign_cannot_be_scheduled_again(shop):
    make_member(shop, "America/New_York")
    campaign = make_campaign(shop)
    schedule_campaign(campaign, now=BEFORE)
    cancel_campaign(campaign)

    with pytest.raises(InvalidRequest, match="cancelled campaign cannot be scheduled"):
        schedule_campaign(campaign, now=BEFORE)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED


def test_messages_are_planned_in_batches(shop, monkeypatch):
    monkeypatch.setattr("engagement.campaigns.BATCH_SIZE", 2)
    for _ in range(5):
        make_member(shop, "America/Chicago")
    campaign = make_campaign(shop)

    with CaptureQueriesContext(connection) as queries:
        assert schedule_campaign(campaign, now=BEFORE) == 5

    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "engagement_message"')]
    assert len(inserts) == 3  # 2 + 2 + 1
    assert Message.objects.filter(campaign=campaign, due_at=utc(2026, 12, 7, 16)).count() == 5
