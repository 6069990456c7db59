"""A merchant's frequency cap: at most `daily_cap` messages per customer per customer-local day and
`weekly_cap` in any 7 days, one message counting once whatever number of channels carried it; and it
holds when two workers decide two campaigns for the same customer at the same instant."""
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from engagement.campaigns import schedule_campaign
from engagement.channels.base import SendFailed
from engagement.dispatch import dispatch_due
from engagement.models import Message, SendLog
from tests.concurrency import run_together
from tests.engagement.conftest import ALL_CHANNELS, Shop, join, make_campaign, make_member, utc

BEFORE = utc(2026, 12, 1)


def decisions(customer) -> list[tuple[str, str, str]]:
    """(campaign name, channel, reason) of every decision about the customer, by campaign name."""
    return sorted(SendLog.objects.filter(customer=customer).values_list("campaign__name", "channel", "reason"))


def campaign_on(shop, name, send_on, send_at=dt.time(10), channels=("email",)):
    campaign = make_campaign(shop, name=name, channels=list(channels), send_on=send_on, send_at=send_at)
    schedule_campaign(campaign, now=BEFORE)
    return campaign


@pytest.mark.django_db
def test_two_campaigns_on_one_day_with_a_daily_cap_of_one(shop, recording_channels):
    customer = make_member(shop, "America/New_York")
    campaign_on(shop, "morning", dt.date(2026, 12, 7), dt.time(9), channels=("email", "sms"))
    campaign_on(shop, "afternoon", dt.date(2026, 12, 7), dt.time(15), channels=("email", "sms"))

    assert dispatch_due(utc(2026, 12, 7, 23)) == 2

    assert decisions(customer) == [
        ("afternoon", "email", "frequency_cap"), ("afternoon", "sms", "frequency_cap"),
        ("morning", "email", "sent"), ("morning", "sms", "sent"),
    ]
    assert {m.subject for m in recording_channels.to(customer)} == {"Double points all week"}
    assert len(recording_channels.to(customer)) == 2
    assert SendLog.objects.filter(reason="frequency_cap").first().detail == "1 a day"


@pytest.mark.django_db
def test_a_message_on_four_channels_counts_once(shop, recording_channels):
    shop.limits(daily_cap=2)
    customer = make_member(shop, "Europe/Paris")
    campaign_on(shop, "first", dt.date(2026, 12, 7), dt.time(9), channels=ALL_CHANNELS)
    campaign_on(shop, "second", dt.date(2026, 12, 7), dt.time(12))
    campaign_on(shop, "third", dt.date(2026, 12, 7), dt.time(18))

    dispatch_due(utc(2026, 12, 7, 23))

    reasons = {(name, channel): reason for name, channel, reason in decisions(customer)}
    assert [reasons[("first", channel)] for channel in ALL_CHANNELS] == ["sent"] * 4
    assert reasons[("second", "email")] == "sent"
    assert reasons[("third", "email")] == "frequency_cap"


@pytest.mark.django_db
def test_the_day_is_the_customers_local_day(shop, recording_channels):
    # 23:00 on 7 Dec and 00:30 on 8 Dec in Honolulu are both on 8 Dec in UTC (09:00, 10:30).
    customer = make_member(shop, "Pacific/Honolulu")
    campaign_on(shop, "late", dt.date(2026, 12, 7), dt.time(23))
    campaign_on(shop, "after midnight", dt.date(2026, 12, 8), dt.time(0, 30))

    dispatch_due(utc(2026, 12, 8, 9))
    dispatch_due(utc(2026, 12, 8, 10, 30))

    assert [reason for _, _, reason in decisions(customer)] == ["sent", "sent"]


@pytest.mark.django_db
def test_weekly_cap_over_any_seven_days(shop, recording_channels):
    shop.limits(daily_cap=1, weekly_cap=2)
    customer = make_member(shop, "Europe/Paris")  # UTC+1 in December
    for day, hour in ((7, 10), (8, 10), (9, 10), (14, 12), (15, 8)):
        campaign_on(shop, f"dec {day}", dt.date(2026, 12, day), dt.time(hour))
        dispatch_due(utc(2026, 12, day, hour - 1))

    assert decisions(customer) == [
        ("dec 14", "email", "sent"),  # the 7th's (10:00) is more than 7 days before 12:00 on the 14th
        ("dec 15", "email", "frequency_cap"),  # the 8th's (10:00) and the 14th's are within 7 days of 08:00
        ("dec 7", "email", "sent"),
        ("dec 8", "email", "sent"),
        ("dec 9", "email", "frequency_cap"),
    ]
    assert SendLog.objects.get(campaign__name="dec 9").detail == "2 in 7 days"


@pytest.mark.django_db
def test_a_failed_send_uses_no_slot_and_other_merchants_have_their_own_cap(shop, other_shop, recording_channels):
    customer = make_member(shop, "Europe/Paris")
    join(customer, other_shop, opt_in=("email",))
    recording_channels.failing["sms"] = SendFailed("unreachable", permanent=True)
    campaign_on(shop, "sms only", dt.date(2026, 12, 7), dt.time(9), channels=("sms",))
    dispatch_due(utc(2026, 12, 7, 8))
    recording_channels.failing.clear()
    campaign_on(shop, "by email", dt.date(2026, 12, 7), dt.time(12))
    campaign_on(other_shop, "the bakery", dt.date(2026, 12, 7), dt.time(12))

    dispatch_due(utc(2026, 12, 7, 11))

    assert decisions(customer) == [("by email", "email", "sent"), ("sms only", "sms", "provider_error"),
                                   ("the bakery", "email", "sent")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_deciding_two_campaigns_for_one_customer_send_one(recording_channels):
    shop = Shop("Café Lumière")
    customer = make_member(shop, "Europe/Paris")
    campaign_on(shop, "one", dt.date(2026, 12, 7))
    campaign_on(shop, "two", dt.date(2026, 12, 7))
    # Each worker lingers between taking its message and counting the cap: without the customer's
    # lock both would count zero and both would send.
    recording_channels.address_delay = 0.3

    decided = run_together(2, lambda index: dispatch_due(utc(2026, 12, 7, 9), limit=1))

    assert decided == [1, 1]  # SKIP LOCKED: each worker took a different message
    assert sorted(reason for _, _, reason in decisions(customer)) == ["frequency_cap", "sent"]
    assert len(recording_channels.to(customer)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_workers_never_take_the_same_message(recording_channels):
    shop = Shop("Café Lumière")
    shop.limits(daily_cap=5)
    customers = [make_member(shop, "Europe/Paris") for _ in range(12)]
    campaign_on(shop, "one", dt.date(2026, 12, 7), channels=("email", "push"))

    decided = run_together(4, lambda index: dispatch_due(utc(2026, 12, 7, 9)))

    assert sum(decided) == 12
    assert SendLog.objects.count() == 24
    assert sorted(m.customer_id for m in recording_channels.sent if m.channel == "email") == sorted(
        c.pk for c in customers)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_message_another_worker_holds_is_skipped_not_waited_for(recording_channels):
    shop = Shop("Café Lumière")
    first, second = make_member(shop, "Europe/Paris"), make_member(shop, "Europe/Paris")
    campaign_on(shop, "one", dt.date(2026, 12, 7))
    held = Message.objects.get(customer=first)
    holding, release = threading.Event(), threading.Event()

    def other_worker():  # has taken `held` and is still deciding it
        try:
            with transaction.atomic():
                Message.objects.select_for_update().get(pk=held.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def this_worker():
        try:
            return dispatch_due(utc(2026, 12, 7, 9))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        holder = pool.submit(other_worker)
        assert holding.wait(timeout=10)
        dispatched = pool.submit(this_worker)
        try:
            decided = dispatched.result(timeout=5)  # waiting for the held row would time out here
        finally:
            release.set()
        holder.result()

    assert decided == 1
    assert [m.customer_id for m in recording_channels.sent] == [second.pk]
    assert Message.objects.get(pk=held.pk).status == Message.Status.PENDING
