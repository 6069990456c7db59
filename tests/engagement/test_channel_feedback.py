"""What providers tell us about a recipient changes who we contact next: a STOP reply to our SMS sender
(Twilio 21610) withdraws the customer's SMS consent with every merchant, and a push token APNs or FCM
reports as gone (410 Unregistered, 400 BadDeviceToken, FCM UNREGISTERED) is switched off, so neither is
tried again by the next campaign. Against the local Twilio, APNs and FCM fakes."""
import datetime as dt

import pytest

from engagement.campaigns import schedule_campaign
from engagement.channels.base import SendFailed
from engagement.channels.push import PushChannel
from engagement.dispatch import dispatch_due
from engagement.models import PushDevice, SendLog
from engagement.push_devices import register_push_device
from tests.engagement import test_push_channel as push_tests
from tests.engagement import test_sms_channel as sms_tests
from tests.engagement.conftest import join, make_campaign, make_member, utc
from wallet.models import DomainEvent
from wallet.services.preferences import channel_consents, set_channel_consent

# The fakes' fixtures, shared with the channels' own tests.
twilio, configured = sms_tests.twilio, sms_tests.configured
fcm_keys, fcm, apns_key, apns = push_tests.fcm_keys, push_tests.fcm, push_tests.apns_key, push_tests.apns
ANDROID, IPHONE, outgoing = push_tests.ANDROID, push_tests.IPHONE, push_tests.outgoing

STOPPED = "+14155550177"
LANDLINE = "+14155550188"
FIRST_DAY, NEXT_DAY = dt.date(2026, 12, 7), dt.date(2026, 12, 8)


def run_campaign(shop, channels, day):
    """Schedule one campaign of `shop` for 10:00 New York on `day` and dispatch it then."""
    schedule_campaign(make_campaign(shop, channels=channels, send_on=day), now=utc(2026, 12, 1))
    dispatch_due(utc(day.year, day.month, day.day, 15, 0))


def log_of(customer, shop, day) -> SendLog:
    return SendLog.objects.get(customer=customer, merchant=shop.merchant, message__campaign__send_on=day)


def withdrawals(customer):
    return sorted(
        (event.merchant_id, event.payload["channel"], event.payload.get("source"))
        for event in DomainEvent.objects.filter(event_type="wallet.consent.changed", customer_id=customer.pk)
        if event.payload["opted_in"] is False
    )


# -- a STOP reply to our SMS sender --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stop_reply_withdraws_sms_consent_with_every_merchant_and_no_later_text_is_tried(
        shop, other_shop, configured, settings):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    customer = make_member(shop, "America/New_York", opt_in=("sms", "email"), phone=STOPPED)
    join(customer, other_shop, opt_in=("sms",))  # and a card of the bakery, which may text them too
    configured.number_errors[STOPPED] = 21610

    run_campaign(shop, ["sms"], FIRST_DAY)

    log = log_of(customer, shop, FIRST_DAY)
    assert (log.decision, log.reason, log.retry_at) == ("failed", "recipient_opted_out", None)
    assert "21610" in log.detail and "withdrawn for every merchant" in log.detail and STOPPED not in log.detail
    assert channel_consents(customer, shop.merchant)["sms"] is False
    assert channel_consents(customer, shop.merchant)["email"] is True  # a text STOP says nothing about email
    assert channel_consents(customer, other_shop.merchant)["sms"] is False
    # Each merchant's CRM hears of it, and why.
    assert withdrawals(customer) == sorted([(shop.merchant.pk, "sms", "provider_opt_out"),
                                            (other_shop.merchant.pk, "sms", "provider_opt_out")])

    run_campaign(other_shop, ["sms"], NEXT_DAY)

    later = log_of(customer, other_shop, NEXT_DAY)
    assert (later.decision, later.reason) == ("skipped", "no_consent")
    assert len(configured.requests) == 1  # the bakery's campaign cost no request to Twilio


@pytest.mark.django_db
def test_the_customer_can_opt_in_again_after_replying_start(shop, configured, settings):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    customer = make_member(shop, "America/New_York", opt_in=("sms",), phone=STOPPED)
    configured.number_errors[STOPPED] = 21610
    run_campaign(shop, ["sms"], FIRST_DAY)

    del configured.number_errors[STOPPED]  # they texted START to our number
    set_channel_consent(customer, shop.merchant, {"sms": True})
    run_campaign(shop, ["sms"], NEXT_DAY)

    assert log_of(customer, shop, NEXT_DAY).decision == "sent"
    assert [message["to"] for message in configured.messages] == [STOPPED]


@pytest.mark.django_db
def test_a_number_that_cannot_get_texts_fails_without_touching_consent(shop, configured, settings):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    customer = make_member(shop, "America/New_York", opt_in=("sms",), phone=LANDLINE)
    configured.number_errors[LANDLINE] = 21614  # a landline: our problem to know, not the customer's choice

    run_campaign(shop, ["sms"], FIRST_DAY)

    log = log_of(customer, shop, FIRST_DAY)
    assert (log.decision, log.reason) == ("failed", "provider_error")
    assert channel_consents(customer, shop.merchant)["sms"] is True
    assert withdrawals(customer) == []


# -- push tokens the provider reports as gone ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("platform, answer", [
    ("apns", (400, "BadDeviceToken")),
    ("apns", (410, "Unregistered")),
    ("fcm", "UNREGISTERED"),
], ids=["apns-400-BadDeviceToken", "apns-410-Unregistered", "fcm-404-UNREGISTERED"])
def test_a_gone_push_token_is_switched_off_and_the_next_campaign_does_not_push_it(
        shop, settings, fcm, apns, platform, answer):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    customer = make_member(shop, "America/New_York", opt_in=("push",))
    token = IPHONE if platform == "apns" else ANDROID
    register_push_device(customer, platform, token)
    if platform == "apns":
        apns.answers[IPHONE] = answer
    else:
        fcm.unregistered.add(ANDROID)

    run_campaign(shop, ["push"], FIRST_DAY)

    log = log_of(customer, shop, FIRST_DAY)
    assert (log.decision, log.reason, log.retry_at) == ("failed", "provider_error", None)
    assert not PushDevice.objects.get(token=token).is_active
    apns_pushes = len(apns.pushes)

    run_campaign(shop, ["push"], NEXT_DAY)

    later = log_of(customer, shop, NEXT_DAY)
    assert (later.decision, later.reason) == ("skipped", "no_address")  # no phone left to push to
    assert len(apns.pushes) == apns_pushes


def test_an_iphone_with_a_bad_device_token_is_pushed_once_and_back_on_when_the_app_registers_again(
        world, settings, fcm, apns):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    customer = world.customer
    register_push_device(customer, "fcm", ANDROID)
    register_push_device(customer, "apns", IPHONE)
    apns.answers[IPHONE] = (400, "BadDeviceToken")

    PushChannel().send(outgoing(world), customer)
    PushChannel().send(outgoing(world), customer)

    assert len(apns.pushes) == 1 and len(fcm.sent) == 2
    register_push_device(customer, "apns", IPHONE)  # the app starts and registers its current token
    assert PushDevice.objects.get(token=IPHONE).is_active


def test_a_token_for_another_app_is_a_setting_to_fix_and_keeps_the_iphone(world, settings, apns):
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    register_push_device(world.customer, "apns", IPHONE)
    apns.answers[IPHONE] = (400, "DeviceTokenNotForTopic")  # our APNS_APP_BUNDLE_ID is wrong, not the phone

    with pytest.raises(SendFailed):
        PushChannel().send(outgoing(world), world.customer)

    assert PushDevice.objects.get(token=IPHONE).is_active
