"""A temporary provider failure (an outage, a rate limit) is tried again, at most three sends in all,
and each retry is decided afresh: a customer who opted out meanwhile is not reached, and one in
quiet hours is tried when they end. A permanent failure is never retried."""
import datetime as dt

import pytest

from engagement.campaigns import schedule_campaign
from engagement.channels.base import SendFailed
from engagement.dispatch import dispatch_due
from engagement.models import SendLog
from tests.engagement.conftest import make_campaign, make_member, opt_out_of, utc

pytestmark = pytest.mark.django_db

BEFORE = utc(2026, 12, 1)
TEN_IN_PARIS = utc(2026, 12, 7, 9)  # make_campaign sends at 10:00 local on 7 December


def sms_campaign(shop, customer_zone="Europe/Paris", **member):
    customer = make_member(shop, customer_zone, **member)
    schedule_campaign(make_campaign(shop, channels=["sms"]), now=BEFORE)
    return customer


def sms_log() -> SendLog:
    return SendLog.objects.get(channel="sms")


def test_a_temporary_failure_is_sent_on_the_next_try(shop, recording_channels):
    customer = sms_campaign(shop)
    recording_channels.failing["sms"] = SendFailed("Twilio answered 503")

    dispatch_due(TEN_IN_PARIS)

    log = sms_log()
    assert (log.decision, log.attempts, log.retry_at) == ("failed", 1, TEN_IN_PARIS + dt.timedelta(minutes=5))
    recording_channels.failing.clear()
    dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=4))
    assert recording_channels.to(customer) == []  # not before its time

    dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=5))

    log.refresh_from_db()
    assert (log.decision, log.reason, log.attempts, log.retry_at) == ("sent", "sent", 2, None)
    assert log.provider_message_id and log.local_time == "2026-12-07 10:05 CET"
    assert [m.channel for m in recording_channels.to(customer)] == ["sms"]


def test_three_failed_sends_and_it_gives_up(shop, recording_channels):
    customer = sms_campaign(shop)
    recording_channels.failing["sms"] = SendFailed("Twilio answered 503")

    for minutes in (0, 5, 35, 120, 600):
        dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=minutes))

    log = sms_log()
    assert (log.decision, log.attempts, log.retry_at) == ("failed", 3, None)
    assert "attempt 3 of 3, giving up" in log.detail and recording_channels.to(customer) == []


def test_the_providers_retry_after_is_honoured_when_longer(shop, recording_channels):
    sms_campaign(shop)
    recording_channels.failing["sms"] = SendFailed("rate limited", retry_after=3600)

    dispatch_due(TEN_IN_PARIS)

    assert sms_log().retry_at == TEN_IN_PARIS + dt.timedelta(hours=1)


def test_a_permanent_failure_is_not_retried(shop, recording_channels):
    sms_campaign(shop)
    recording_channels.failing["sms"] = SendFailed("not a mobile number", permanent=True)

    dispatch_due(TEN_IN_PARIS)
    recording_channels.failing.clear()
    dispatch_due(TEN_IN_PARIS + dt.timedelta(hours=1))

    log = sms_log()
    assert (log.decision, log.attempts, log.retry_at) == ("failed", 1, None)


def test_a_customer_who_opted_out_before_the_retry_is_not_reached(shop, recording_channels):
    customer = sms_campaign(shop)
    recording_channels.failing["sms"] = SendFailed("Twilio answered 503")
    dispatch_due(TEN_IN_PARIS)
    recording_channels.failing.clear()
    opt_out_of(customer, shop, "sms")

    dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=5))

    log = sms_log()
    assert (log.decision, log.reason, log.retry_at) == ("skipped", "no_consent", None)
    assert recording_channels.to(customer) == []


def test_a_retry_that_falls_in_quiet_hours_waits_for_them_to_end(shop, recording_channels):
    customer = sms_campaign(shop, quiet_hours=(dt.time(10, 3), dt.time(12)))
    recording_channels.failing["sms"] = SendFailed("Twilio answered 503")
    dispatch_due(TEN_IN_PARIS)
    recording_channels.failing.clear()

    dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=5))  # 10:05 Paris: quiet

    log = sms_log()
    assert (log.decision, log.retry_at) == ("failed", utc(2026, 12, 7, 11))  # 12:00 Paris
    dispatch_due(utc(2026, 12, 7, 11))
    log.refresh_from_db()
    assert log.decision == "sent" and [m.channel for m in recording_channels.to(customer)] == ["sms"]


def test_a_retry_still_counts_against_the_cap_that_another_message_filled_meanwhile(shop, recording_channels):
    customer = sms_campaign(shop)  # the default cap: one message a day
    recording_channels.failing["sms"] = SendFailed("Twilio answered 503")
    dispatch_due(TEN_IN_PARIS)  # failed: it used no slot
    recording_channels.failing.clear()
    schedule_campaign(make_campaign(shop, name="Later news", channels=["email"], send_at=dt.time(10, 2)), now=BEFORE)
    dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=2))  # the email goes out and takes today's slot

    dispatch_due(TEN_IN_PARIS + dt.timedelta(minutes=5))

    assert (sms_log().decision, sms_log().reason) == ("skipped", "frequency_cap")
    assert [m.channel for m in recording_channels.to(customer)] == ["email"]
