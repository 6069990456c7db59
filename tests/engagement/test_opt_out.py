"""The one-click opt-out page (/e/o/<token>/): GET only shows, POST opts out once, bad links are a 404
that names nobody. Posted without a CSRF token, as a mail client's RFC 8058 one-click POST is."""
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from engagement.models import MerchantEngagement
from engagement.optout import SALT, opt_out_token, opt_out_url
from tests.factories import build_world
from wallet.models import DomainEvent
from wallet.services.preferences import channel_consents, may_contact, set_channel_consent

pytestmark = pytest.mark.django_db

ONE_CLICK = {"data": "List-Unsubscribe=One-Click", "content_type": "application/x-www-form-urlencoded"}


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def path_of(url: str) -> str:
    return urlsplit(url).path


def tampered(token: str) -> str:
    return token[:-1] + ("B" if token.endswith("A") else "A")


def consent_events(customer) -> int:
    return DomainEvent.objects.filter(event_type="wallet.consent.changed", customer_id=customer.pk).count()


def test_link_path_is_under_e_o(world):
    url = opt_out_url(world.customer.pk, world.merchant.pk, "email")
    assert path_of(url).startswith("/e/o/") and path_of(url).endswith("/")


def test_get_shows_merchant_and_channel_and_changes_nothing(world, browser):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    MerchantEngagement.objects.create(merchant=world.merchant, sender_name="Café Lumière")
    events = consent_events(world.customer)

    response = browser.get(path_of(opt_out_url(world.customer.pk, world.merchant.pk, "email")))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Stop emails from Café Lumière?" in page
    assert '<form method="post">' in page and "<script" not in page
    assert world.customer.user.email not in page
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert consent_events(world.customer) == events
    assert may_contact(world.customer, world.merchant, "email", timezone.now()) == (True, "allowed")


def test_post_twice_opts_out_once(world, browser):
    set_channel_consent(world.customer, world.merchant, {"sms": True})
    events = consent_events(world.customer)
    path = path_of(opt_out_url(world.customer.pk, world.merchant.pk, "sms"))

    first = browser.post(path, **ONE_CLICK)
    second = browser.post(path, **ONE_CLICK)

    for response in (first, second):
        assert response.status_code == 200
        assert f"You will no longer get text messages from {world.merchant.name}." in response.content.decode()
    assert consent_events(world.customer) == events + 1
    event = DomainEvent.objects.filter(event_type="wallet.consent.changed").latest("id")
    assert event.merchant_id == world.merchant.pk
    assert event.payload == {"customer_id": world.customer.pk, "channel": "sms", "opted_in": False}
    assert may_contact(world.customer, world.merchant, "sms", timezone.now()) == (False, "not_opted_in")


def test_the_button_posts_from_the_page_it_is_on(world, browser):
    """The page's own form (an empty action posts back to the same link) opts out too."""
    set_channel_consent(world.customer, world.merchant, {"email": True})
    path = path_of(opt_out_url(world.customer.pk, world.merchant.pk, "email"))
    assert 'name="List-Unsubscribe" value="One-Click"' in browser.get(path).content.decode()

    response = browser.post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert channel_consents(world.customer, world.merchant)["email"] is False


def test_opting_out_touches_only_that_merchant_and_channel(world, browser):
    other = build_world()
    set_channel_consent(world.customer, world.merchant, {"email": True, "sms": True})
    set_channel_consent(world.customer, other.merchant, {"email": True})

    browser.post(path_of(opt_out_url(world.customer.pk, world.merchant.pk, "email")), **ONE_CLICK)

    assert channel_consents(world.customer, world.merchant)["email"] is False
    assert channel_consents(world.customer, world.merchant)["sms"] is True
    assert channel_consents(world.customer, other.merchant)["email"] is True


def test_page_says_when_already_opted_out(world, browser):
    response = browser.get(path_of(opt_out_url(world.customer.pk, world.merchant.pk, "push")))
    assert f"You currently get no push notifications from {world.merchant.name}." in response.content.decode()


@pytest.mark.parametrize("how", ["tampered", "foreign key", "other salt", "unknown customer", "unknown channel"])
def test_bad_links_are_a_404_that_names_nobody(world, browser, how):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    ids = [world.customer.pk, world.merchant.pk, "email"]
    token = {
        "tampered": tampered(opt_out_token(*ids)),
        "foreign key": signing.dumps(ids, salt=SALT, key="another site's secret key", compress=True),
        "other salt": signing.dumps(ids, salt="tessera.something-else", compress=True),
        "unknown customer": opt_out_token(world.customer.pk + 1000, world.merchant.pk, "email"),
        "unknown channel": signing.dumps([world.customer.pk, world.merchant.pk, "fax"], salt=SALT, compress=True),
    }[how]
    events = consent_events(world.customer)

    for response in (browser.get(f"/e/o/{token}/"), browser.post(f"/e/o/{token}/", **ONE_CLICK)):
        assert response.status_code == 404
        page = response.content.decode()
        assert "This link is not valid" in page
        assert world.merchant.name not in page and world.customer.user.email not in page
    assert consent_events(world.customer) == events
    assert channel_consents(world.customer, world.merchant)["email"] is True
