"""Fixtures for engagement tests: merchants with a program, members in chosen time zones, consent,
offers and campaigns, and the recording channel in place of every real one.

Generic on purpose: other engagement tests import these helpers (`make_member`, `make_offer`, ...).
"""
import datetime as dt

import pytest

from engagement.models import Campaign, MerchantEngagement, Offer

# The customer API's clients (a signed-in customer, and another one), for the engagement API tests.
from tests.api.conftest import customer_client, other_customer, other_customer_client  # noqa: F401
from tests.engagement.recording_channel import CHANNEL_PATHS, OUTBOX
from tests.factories import make_card, make_customer, make_merchant, make_program, make_store
from wallet.services.preferences import set_channel_consent

ALL_CHANNELS = ("email", "sms", "push", "wallet_pass")
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


class Shop:
    """A merchant with a store and a program its members join."""

    def __init__(self, name: str, time_zone: str = "America/New_York"):
        self.merchant = make_merchant(name=name, time_zone=time_zone, currency="USD")
        self.store = make_store(self.merchant)
        self.program = make_program(self.merchant)

    def limits(self, *, daily_cap=1, weekly_cap=3, sender_name="") -> MerchantEngagement:
        engagement, _ = MerchantEngagement.objects.update_or_create(
            merchant=self.merchant,
            defaults={"daily_cap": daily_cap, "weekly_cap": weekly_cap, "sender_name": sender_name},
        )
        return engagement


def make_member(shop: Shop, time_zone: str = "UTC", *, opt_in=ALL_CHANNELS, quiet_hours=None, phone=""):
    """A customer in `time_zone` with a card of `shop`, opted in to `opt_in` for it. Quiet hours as a
    (start, end) pair of times in the customer's zone."""
    customer = make_customer(time_zone=time_zone)
    if phone:
        customer.user.phone = phone
        customer.user.save(update_fields=["phone"])
    if quiet_hours:
        customer.quiet_hours_start, customer.quiet_hours_end = quiet_hours
        customer.save(update_fields=["quiet_hours_start", "quiet_hours_end"])
    make_card(shop.program, customer)
    opt_in_to(customer, shop, *opt_in)
    return customer


def join(customer, shop: Shop, *, opt_in=()):
    """An existing customer takes a card of another shop."""
    card = make_card(shop.program, customer)
    opt_in_to(customer, shop, *opt_in)
    return card


def opt_in_to(customer, shop: Shop, *channels):
    if channels:
        set_channel_consent(customer, shop.merchant, dict.fromkeys(channels, True))


def opt_out_of(customer, shop: Shop, *channels):
    set_channel_consent(customer, shop.merchant, dict.fromkeys(channels, False))


def make_offer(shop: Shop, **fields) -> Offer:
    values = {"title": "Double points week", "description": "Every coffee earns twice the points.",
              "kind": Offer.Kind.MULTIPLIER, "multiplier": 2, "valid_from": LONG_AGO}
    values.update(fields)
    return Offer.objects.create(merchant=shop.merchant, **values)


def make_campaign(shop: Shop, offer: Offer | None = None, **fields) -> Campaign:
    values = {"name": "December push", "channels": ["email"], "subject": "Double points all week",
              "message": "Every coffee earns double points until Sunday. See you soon!",
              "send_on": dt.date(2026, 12, 7), "send_at": dt.time(10, 0)}
    values.update(fields)
    return Campaign.objects.create(merchant=shop.merchant, offer=offer or make_offer(shop), **values)


@pytest.fixture(autouse=True)
def clear_cache():
    """Per-number SMS counters live in the cache (engagement.sms_caps): each test starts with none,
    however often the suite runs against one Redis."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def recording_channels(settings):
    """Every channel key sends through the recording channel; returns its outbox, emptied."""
    settings.TESSERA_ENGAGEMENT_CHANNELS = dict(CHANNEL_PATHS)
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    OUTBOX.reset()
    yield OUTBOX
    OUTBOX.reset()


@pytest.fixture
def shop(db):
    return Shop("Café Lumière")


@pytest.fixture
def other_shop(db):
    return Shop("Bakery Brava")
