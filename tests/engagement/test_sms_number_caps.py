"""One phone number gets a bounded number of texts, whichever merchants send them: the per-number
limits hold across merchants, per UTC hour and day of the dispatcher's clock, for workers sending at
once (real Redis), and when the cache is down no text goes out unchecked. Texts are counted where
they arrive: a local fake of Twilio (tests/engagement/twilio_fake.py)."""
import contextlib
import uuid

import pytest

from engagement.campaigns import schedule_campaign
from engagement.channels.base import OutgoingMessage
from engagement.channels.sms import SmsChannel
from engagement.dispatch import dispatch_due, retry_due
from engagement.models import SendLog
from engagement.sms_caps import NumberCapped, reserve_sms
from tests.concurrency import run_together
from tests.engagement.conftest import Shop, join, make_campaign, make_member, utc
from tests.engagement.twilio_fake import FakeTwilio

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-d41d8cd98f00b204"
TO, OTHER = "+14155550123", "+14155550188"
BEFORE = utc(2026, 12, 1)


@pytest.fixture(autouse=True)
def own_cache(settings):
    """Counters start empty in every test: an in-process cache of its own."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"sms-caps-{uuid.uuid4().hex}"}}


@pytest.fixture
def twilio(settings):
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    settings.TESSERA_ENGAGEMENT_CHANNELS = {**settings.TESSERA_ENGAGEMENT_CHANNELS,
                                            "sms": "engagement.channels.sms.SmsChannel"}
    settings.TESSERA_SMS_PROVIDER = "engagement.channels.sms.TwilioSmsProvider"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = ACCOUNT_SID, AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER, settings.TWILIO_MESSAGING_SERVICE_SID = "+15005550006", ""
    settings.TWILIO_API_BASE = fake.url
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    yield fake
    fake.stop()


def caps(settings, *, hour, day):
    settings.SMS_MAX_PER_NUMBER_PER_HOUR, settings.SMS_MAX_PER_NUMBER_PER_DAY = hour, day


def texted(twilio, number=TO) -> int:
    return sum(message["to"] == number for message in twilio.messages)


def sms_campaign(shop, day=7, hour=10):
    """An SMS campaign of `shop` for 2026-12-`day` at `hour`:00 in each member's time zone, scheduled."""
    campaign = make_campaign(shop, channels=["sms"], send_on=utc(2026, 12, day).date(),
                             send_at=utc(2026, 12, day, hour).time())
    schedule_campaign(campaign, now=BEFORE)
    return campaign


def sms_logs(**filters) -> list[tuple[str, str]]:
    return sorted(SendLog.objects.filter(channel="sms", **filters).values_list("decision", "reason"))


@pytest.mark.django_db
def test_one_number_gets_no_more_than_the_daily_limit_from_all_merchants_together(settings, twilio):
    caps(settings, hour=100, day=2)
    shops = [Shop("Café Lumière"), Shop("Bakery Brava"), Shop("Tea House")]
    person = make_member(shops[0], opt_in=("sms",), phone=TO)
    for shop in shops[1:]:
        join(person, shop, opt_in=("sms",))
    for shop in shops:
        sms_campaign(shop)

    dispatch_due(utc(2026, 12, 7, 10))

    assert texted(twilio) == 2
    assert sms_logs() == [("sent", "sent"), ("sent", "sent"), ("skipped", "number_capped")]
    capped = SendLog.objects.get(reason="number_capped")
    assert capped.retry_at is None and TO not in capped.detail
    # not sent, so not tried again: later runs the same day send nothing more
    dispatch_due(utc(2026, 12, 7, 18))
    retry_due(utc(2026, 12, 7, 23))
    assert texted(twilio) == 2 and sms_logs(reason="number_capped") == [("skipped", "number_capped")]


@pytest.mark.django_db
def test_each_number_has_its_own_limit(settings, twilio):
    caps(settings, hour=100, day=1)
    first, second = Shop("Café Lumière"), Shop("Bakery Brava")
    ada = make_member(first, opt_in=("sms",), phone=TO)
    grace = make_member(first, opt_in=("sms",), phone=OTHER)
    join(ada, second, opt_in=("sms",))
    join(grace, second, opt_in=("sms",))
    sms_campaign(first, hour=10)
    sms_campaign(second, hour=12)

    dispatch_due(utc(2026, 12, 7, 10))
    assert (texted(twilio, TO), texted(twilio, OTHER)) == (1, 1)  # one's text does not use the other's

    dispatch_due(utc(2026, 12, 7, 12))
    assert (texted(twilio, TO), texted(twilio, OTHER)) == (1, 1)
    assert sms_logs(merchant=second.merchant) == [("skipped", "number_capped")] * 2


@pytest.mark.django_db
def test_the_limits_start_again_with_the_next_hour_and_the_next_day(settings, twilio):
    caps(settings, hour=1, day=2)
    shops = [Shop(f"Shop {index}") for index in range(5)]
    person = make_member(shops[0], opt_in=("sms",), phone=TO)
    for shop in shops[1:]:
        join(person, shop, opt_in=("sms",))
    sms_campaign(shops[0], hour=10)
    sms_campaign(shops[1], hour=10)
    sms_campaign(shops[2], hour=11)
    sms_campaign(shops[3], hour=12)
    sms_campaign(shops[4], day=8, hour=10)

    dispatch_due(utc(2026, 12, 7, 10, 5))
    assert texted(twilio) == 1  # two due at 10:00, one an hour
    assert sms_logs(reason="number_capped") == [("skipped", "number_capped")]

    dispatch_due(utc(2026, 12, 7, 11, 5))
    assert texted(twilio) == 2  # a new hour

    dispatch_due(utc(2026, 12, 7, 12, 5))
    assert texted(twilio) == 2  # a new hour, but the day has had its two
    assert len(sms_logs(reason="number_capped")) == 2

    dispatch_due(utc(2026, 12, 8, 10, 5))
    assert texted(twilio) == 3  # a new day


@pytest.mark.django_db
def test_spellings_of_one_number_share_its_limit(settings):
    caps(settings, hour=100, day=2)
    moment = utc(2026, 12, 7, 10)
    reserve_sms("+1 (415) 555-0123", moment)
    reserve_sms("+14155550123", moment)
    with pytest.raises(NumberCapped):
        reserve_sms(" +1 415 555 0123", moment)
    reserve_sms(OTHER, moment)


@pytest.mark.django_db
def test_with_the_cache_down_no_text_goes_out_and_it_is_tried_again_later(settings, twilio):
    caps(settings, hour=100, day=10)
    shop = Shop("Café Lumière")
    make_member(shop, opt_in=("sms",), phone=TO)
    sms_campaign(shop)

    with cache_unreachable(settings):
        dispatch_due(utc(2026, 12, 7, 10))

    assert twilio.requests == []
    log = SendLog.objects.get(channel="sms")
    assert (log.decision, log.reason) == ("failed", "provider_error")
    assert "could not be checked" in log.detail and log.retry_at == utc(2026, 12, 7, 10, 5)

    retry_due(utc(2026, 12, 7, 10, 5))
    assert texted(twilio) == 1
    log.refresh_from_db()
    assert (log.decision, log.attempts) == ("sent", 2)


@contextlib.contextmanager
def cache_unreachable(settings):
    working = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
                                   "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1}}}
    try:
        yield
    finally:
        settings.CACHES = working


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_workers_texting_one_number_at_once_send_only_the_limit(settings, twilio, redis_cache):
    caps(settings, hour=100, day=5)
    shops = [Shop(f"Shop {index}") for index in range(20)]
    person = make_member(shops[0], opt_in=("sms",), phone=TO)
    for shop in shops[1:]:
        join(person, shop, opt_in=("sms",))
    for shop in shops:
        sms_campaign(shop)

    decided = run_together(20, lambda _index: dispatch_due(utc(2026, 12, 7, 10), limit=1))

    assert sum(decided) == 20  # every worker took one message: the twenty sends really ran together
    assert texted(twilio) == 5
    assert sms_logs() == [("sent", "sent")] * 5 + [("skipped", "number_capped")] * 15


@pytest.mark.django_db(transaction=True)
def test_twenty_texts_to_one_number_at_once_reach_twilio_only_up_to_the_limit(settings, twilio, redis_cache, world):
    """The counters themselves under a burst, without the dispatcher's per-customer row lock spacing
    the sends out: every thread counts, then texts through the real SMS channel if allowed."""
    caps(settings, hour=100, day=5)
    world.customer.user.phone = TO
    world.customer.user.save(update_fields=["phone"])
    message = OutgoingMessage(merchant_id=world.merchant.pk, merchant_name=world.merchant.name,
                              customer_id=world.customer.pk, card_id=world.card.pk, channel="sms", subject="",
                              body="Double points today", opt_out_url="https://tessera.example/e/o/x/")

    def text(_index):
        try:
            reserve_sms(TO, utc(2026, 12, 7, 10))
        except NumberCapped:
            return "capped"
        SmsChannel().send(message, world.customer)
        return "sent"

    outcomes = run_together(20, text)

    assert sorted(outcomes) == ["capped"] * 15 + ["sent"] * 5
    assert texted(twilio) == 5
