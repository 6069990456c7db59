"""The dispatcher: each member hears at their own local send time, only on channels they allowed that
merchant, never in quiet hours, and every decision on every channel is logged with its reason."""
import datetime as dt

import pytest
from django.utils import timezone

from engagement.campaigns import cancel_campaign, schedule_campaign
from engagement.channels.base import SendFailed
from engagement.dispatch import IN_FLIGHT, dispatch_due
from engagement.models import Campaign, Message, SendLog
from engagement.tasks import dispatch_due_messages_task
from tests.engagement.conftest import (
    ALL_CHANNELS,
    join,
    make_campaign,
    make_member,
    make_offer,
    opt_out_of,
    utc,
)
from wallet.models import Card

pytestmark = pytest.mark.django_db

BEFORE = utc(2026, 12, 1)


def logs_of(customer) -> dict[str, tuple[str, str]]:
    """channel -> (decision, reason) of the customer's send log."""
    return {log.channel: (log.decision, log.reason) for log in SendLog.objects.filter(customer=customer)}


def test_ten_oclock_in_new_york_and_ten_oclock_in_honolulu(shop, recording_channels):
    new_york = make_member(shop, "America/New_York")
    honolulu = make_member(shop, "Pacific/Honolulu")
    sleeper = make_member(shop, "America/New_York", quiet_hours=(dt.time(9), dt.time(11)))
    schedule_campaign(make_campaign(shop, channels=["email"]), now=BEFORE)

    assert dispatch_due(utc(2026, 12, 7, 14, 59)) == 0
    assert recording_channels.sent == []

    assert dispatch_due(utc(2026, 12, 7, 15, 0)) == 2  # 10:00 EST: both New Yorkers are decided
    [email] = recording_channels.sent
    assert email.customer_id == new_york.pk and email.channel == "email"
    assert email.subject == "Double points all week" and email.merchant_name == "Café Lumière"
    assert email.body.startswith("Every coffee earns double points until Sunday.")
    assert email.body.endswith(email.opt_out_url) and email.opt_out_url.startswith("https://tessera.example/e/o/")
    assert logs_of(sleeper) == {"email": ("skipped", "quiet_hours")}
    log = SendLog.objects.get(customer=new_york)
    assert (log.decision, log.reason, log.local_time, log.provider_message_id) == (
        "sent", "sent", "2026-12-07 10:00 EST", "email-1")

    assert dispatch_due(utc(2026, 12, 7, 19, 59)) == 0
    assert dispatch_due(utc(2026, 12, 7, 20, 0)) == 1  # 10:00 HST
    assert [m.customer_id for m in recording_channels.sent] == [new_york.pk, honolulu.pk]
    assert SendLog.objects.get(customer=honolulu).local_time == "2026-12-07 10:00 HST"
    assert recording_channels.to(sleeper) == []
    assert not Message.objects.filter(status=Message.Status.PENDING).exists()


@pytest.mark.parametrize(
    ("send_on", "send_at", "expected"),
    [
        # spring forward: 02:30 does not exist, so each member hears at 03:30 their time
        (dt.date(2026, 3, 8), dt.time(2, 30), {"America/New_York": "2026-03-08 03:30 EDT",
                                                "America/Chicago": "2026-03-08 03:30 CDT",
                                                "America/Los_Angeles": "2026-03-08 03:30 PDT"}),
        # fall back: 01:30 happens twice; the first one counts and the second sends nothing more
        (dt.date(2026, 11, 1), dt.time(1, 30), {"America/New_York": "2026-11-01 01:30 EDT",
                                                 "America/Chicago": "2026-11-01 01:30 CDT",
                                                 "America/Los_Angeles": "2026-11-01 01:30 PDT"}),
    ],
)
def test_across_a_dst_change_each_member_gets_it_exactly_once(shop, recording_channels, send_on, send_at, expected):
    shop.limits(daily_cap=10, weekly_cap=10)  # a cap must not hide a second send
    members = {zone: make_member(shop, zone) for zone in expected}
    schedule_campaign(make_campaign(shop, channels=["email"], send_on=send_on, send_at=send_at),
                      now=utc(2026, 1, 1))

    start = dt.datetime.combine(send_on, dt.time(0), tzinfo=dt.UTC)
    for step in range(4 * 36):  # every 15 minutes across the whole day in every zone here
        dispatch_due(start + dt.timedelta(minutes=15 * step))

    for zone, customer in members.items():
        assert len(recording_channels.to(customer)) == 1, zone
        assert SendLog.objects.get(customer=customer).local_time == expected[zone]


def test_consent_is_per_merchant_and_channel_and_every_skip_is_logged(shop, other_shop, recording_channels):
    customer = make_member(shop, "Europe/Paris", opt_in=("email", "sms"))
    opt_out_of(customer, shop, "sms")
    join(customer, other_shop)  # a member there too, but never opted in
    from_a = make_campaign(shop, channels=["sms", "email"])
    from_b = make_campaign(other_shop, channels=["sms", "email"])
    schedule_campaign(from_a, now=BEFORE)
    schedule_campaign(from_b, now=BEFORE)

    assert dispatch_due(utc(2026, 12, 7, 9)) == 2

    [email] = recording_channels.to(customer)
    assert (email.channel, email.merchant_id) == ("email", shop.merchant.pk)
    logs = {(log.campaign_id, log.channel): (log.decision, log.reason) for log in SendLog.objects.all()}
    assert logs == {
        (from_a.pk, "email"): ("sent", "sent"),
        (from_a.pk, "sms"): ("skipped", "no_consent"),
        (from_b.pk, "email"): ("skipped", "no_consent"),
        (from_b.pk, "sms"): ("skipped", "no_consent"),
    }


def test_sms_is_short_and_ends_with_its_opt_out_link(shop, recording_channels):
    shop.limits(sender_name="Lumière")
    customer = make_member(shop, "Europe/Paris", phone="+33612345678")
    schedule_campaign(make_campaign(shop, channels=["sms", "email", "push", "wallet_pass"], message="Fresh " * 80),
                      now=BEFORE)

    dispatch_due(utc(2026, 12, 7, 9))

    received = {m.channel: m for m in recording_channels.to(customer)}
    assert set(received) == set(ALL_CHANNELS)
    sms = received["sms"]
    assert len(sms.body) <= 320 and sms.body.startswith("Lumière: Fresh Fresh")
    assert sms.body.endswith(f"Stop: {sms.opt_out_url}") and "..." in sms.body
    assert "\n" not in sms.body
    assert received["email"].body.endswith(received["email"].opt_out_url)
    assert received["email"].headers["List-Unsubscribe"] == f"<{received['email'].opt_out_url}>"
    assert len(received["wallet_pass"].body) <= 200
    assert all(m.merchant_name == "Lumière" for m in received.values())
    # one link per channel: opting out of SMS leaves email alone
    assert len({m.opt_out_url for m in received.values()}) == 4
    assert SendLog.objects.filter(customer=customer, decision="sent").count() == 4


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (lambda c, m, campaign: c.__class__.objects.filter(pk=c.pk).update(erased_at=timezone.now()),
         "customer_erased"),
        (lambda c, m, campaign: Card.objects.filter(pk=m.card_id).update(status="closed"), "card_closed"),
        (lambda c, m, campaign: cancel_campaign(campaign), "campaign_cancelled"),
        (lambda c, m, campaign: campaign.offer.__class__.objects.filter(pk=campaign.offer_id).update(is_active=False),
         "offer_ended"),
        (lambda c, m, campaign: campaign.offer.__class__.objects.filter(pk=campaign.offer_id).update(
            valid_until=utc(2026, 12, 7, 8)), "offer_ended"),
        (lambda c, m, campaign: c.__class__.objects.filter(pk=c.pk).update(communication_paused=True),
         "communication_paused"),
    ],
)
def test_nothing_goes_out_when_the_message_can_no_longer_be_sent(shop, recording_channels, arrange, reason):
    customer = make_member(shop, "Europe/Paris")
    campaign = make_campaign(shop, channels=["email", "push"])
    schedule_campaign(campaign, now=BEFORE)
    arrange(customer, Message.objects.get(customer=customer), campaign)

    assert dispatch_due(utc(2026, 12, 7, 9)) == 1

    assert recording_channels.sent == []
    assert logs_of(customer) == {"email": ("skipped", reason), "push": ("skipped", reason)}
    assert Message.objects.get(customer=customer).status == Message.Status.DONE


def test_channel_not_configured_or_no_address(shop, recording_channels, settings):
    del settings.TESSERA_ENGAGEMENT_CHANNELS["push"]
    recording_channels.unavailable.add("sms")
    customer = make_member(shop, "Europe/Paris")
    recording_channels.no_address.add(("wallet_pass", customer.pk))
    schedule_campaign(make_campaign(shop, channels=list(ALL_CHANNELS)), now=BEFORE)

    dispatch_due(utc(2026, 12, 7, 9))

    assert logs_of(customer) == {
        "email": ("sent", "sent"),
        "sms": ("skipped", "channel_unavailable"),
        "push": ("skipped", "channel_unavailable"),
        "wallet_pass": ("skipped", "no_address"),
    }
    assert SendLog.objects.get(channel="sms").detail == "No sms provider configured."


def test_a_provider_failure_is_logged_without_secrets(shop, recording_channels):
    recording_channels.failing["sms"] = SendFailed("Twilio 401 for api_key=sk_live_abc123, Bearer eyJhbGci")
    customer = make_member(shop, "Europe/Paris")
    schedule_campaign(make_campaign(shop, channels=["sms", "email"]), now=BEFORE)

    dispatch_due(utc(2026, 12, 7, 9))

    log = SendLog.objects.get(channel="sms")
    assert (log.decision, log.reason) == ("failed", "provider_error")
    assert log.detail == ("Temporary failure, attempt 1 of 3, trying again at 2026-12-07 09:05 UTC: "
                          "Twilio 401 for api_key=[redacted], Bearer [redacted]")
    assert logs_of(customer)["email"] == ("sent", "sent")


def test_a_crash_after_the_decision_never_sends_twice(shop, recording_channels):
    class WorkerKilled(BaseException):
        """The worker process dies mid-send (not an Exception: nothing catches it)."""

    recording_channels.failing["email"] = WorkerKilled()
    customer = make_member(shop, "Europe/Paris")
    schedule_campaign(make_campaign(shop, channels=["email"]), now=BEFORE)

    with pytest.raises(WorkerKilled):
        dispatch_due(utc(2026, 12, 7, 9))
    recording_channels.failing.clear()
    assert dispatch_due(utc(2026, 12, 7, 9, 1)) == 0  # the beat's next run

    assert recording_channels.sent == []
    log = SendLog.objects.get(customer=customer)
    assert (log.decision, log.detail) == ("sent", IN_FLIGHT)  # an operator sees the outcome is unknown


def test_each_message_is_decided_once_with_one_log_per_channel(shop, recording_channels):
    customer = make_member(shop, "Europe/Paris")
    campaign = make_campaign(shop, channels=["email", "push"])
    schedule_campaign(campaign, now=BEFORE)

    assert dispatch_due(utc(2026, 12, 7, 9)) == 1
    assert dispatch_due(utc(2026, 12, 7, 10)) == 0

    assert SendLog.objects.filter(customer=customer).count() == 2
    message = Message.objects.get(customer=customer)
    assert (message.status, message.processed_at) == ("done", utc(2026, 12, 7, 9))
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DONE
    assert len(recording_channels.sent) == 2


def test_oldest_first_and_limit(shop, recording_channels):
    shop.limits(daily_cap=5)
    customers = [make_member(shop, zone) for zone in ("Asia/Tokyo", "Europe/Paris", "America/New_York")]
    schedule_campaign(make_campaign(shop), now=BEFORE)

    assert dispatch_due(utc(2026, 12, 8), limit=2) == 2
    assert [m.customer_id for m in recording_channels.sent] == [customers[0].pk, customers[1].pk]
    assert dispatch_due(utc(2026, 12, 8), limit=2) == 1


def welcome_message(shop, customer, due_at, **offer_fields):
    offer = make_offer(shop, title="Free croissant", description="Your first croissant is on us.",
                       is_welcome=True, **offer_fields)
    card = Card.objects.get(merchant=shop.merchant, wallet__customer=customer)
    return Message.objects.create(merchant=shop.merchant, customer=customer, card=card, kind=Message.Kind.WELCOME,
                                  offer=offer, channels=["push", "email"], due_at=due_at)


def test_a_welcome_in_quiet_hours_waits_for_them_to_end(shop, recording_channels):
    customer = make_member(shop, "Europe/Paris", quiet_hours=(dt.time(22), dt.time(8)))
    message = welcome_message(shop, customer, utc(2026, 12, 7, 22))  # 23:00 in Paris

    assert dispatch_due(utc(2026, 12, 7, 22)) == 0

    message.refresh_from_db()
    assert message.status == "pending" and message.due_at == utc(2026, 12, 8, 7)  # 08:00 Paris
    assert not SendLog.objects.exists() and recording_channels.sent == []
    assert dispatch_due(utc(2026, 12, 8, 6, 59)) == 0
    assert dispatch_due(utc(2026, 12, 8, 7)) == 1
    push, email = recording_channels.to(customer)
    assert (push.channel, email.channel) == ("push", "email")
    assert push.subject == "Welcome to Café Lumière: Free croissant"
    assert push.body == "Your first croissant is on us." and push.offer_id == message.offer_id
    assert SendLog.objects.get(channel="push").local_time == "2026-12-08 08:00 CET"


def test_a_campaign_in_quiet_hours_is_skipped_not_delayed(shop, recording_channels):
    customer = make_member(shop, "Europe/Paris", quiet_hours=(dt.time(22), dt.time(8)))
    schedule_campaign(make_campaign(shop, send_at=dt.time(7, 30)), now=BEFORE)

    assert dispatch_due(utc(2026, 12, 7, 6, 30)) == 1

    assert logs_of(customer) == {"email": ("skipped", "quiet_hours")}
    assert dispatch_due(utc(2026, 12, 7, 8)) == 0 and recording_channels.sent == []


def test_the_beat_task_dispatches_what_is_due(shop, recording_channels):
    customer = make_member(shop, "Europe/Paris")
    welcome_message(shop, customer, timezone.now() - dt.timedelta(minutes=1))

    assert dispatch_due_messages_task() == 1
    assert [m.channel for m in recording_channels.to(customer)] == ["push", "email"]


def test_a_misconfigured_channel_does_not_block_the_others(shop, recording_channels, settings):
    settings.TESSERA_ENGAGEMENT_CHANNELS["push"] = "tests.engagement.recording_channel.Outbox"  # not a sender
    settings.TESSERA_ENGAGEMENT_CHANNELS["sms"] = "tests.engagement.no_such_module.SmsChannel"
    customer = make_member(shop, "Europe/Paris")
    schedule_campaign(make_campaign(shop, channels=["push", "sms", "email"]), now=BEFORE)

    assert dispatch_due(utc(2026, 12, 7, 9)) == 1

    assert logs_of(customer) == {"push": ("skipped", "channel_unavailable"), "sms": ("skipped", "channel_unavailable"),
                                 "email": ("sent", "sent")}
    assert [m.channel for m in recording_channels.to(customer)] == ["email"]
