"""The offer line on a wallet pass follows offers opening and closing: the beat job updates exactly the
passes whose best offer changed (an Apple device gets the update push), and nothing else."""
import datetime as dt

import pytest

from engagement.models import PassOfferLine
from engagement.pass_refresh import refresh_pass_offer_lines
from tests.engagement.conftest import make_member, make_offer, utc
from tests.passes.test_pass_updates import fake_apns, register  # noqa: F401 (fixture)
from wallet.models import Card

pytestmark = pytest.mark.django_db

# The shop's store keeps New York time; a breakfast offer runs 07:00-10:00 there (12:00-15:00 UTC).
BEFORE_BREAKFAST, DURING, LATER_DURING, AFTER = (utc(2026, 12, 7, 11), utc(2026, 12, 7, 13),
                                                 utc(2026, 12, 7, 13, 15), utc(2026, 12, 7, 15, 15))


@pytest.fixture
def breakfast(shop):
    return make_offer(shop, title="Breakfast double points", daily_start=dt.time(7), daily_end=dt.time(10))


def card_of(customer) -> Card:
    return Card.objects.get(wallet__customer=customer)


def refresh(at, capture):
    """One run of the job, with the update pushes it schedules on commit sent."""
    with capture(execute=True):
        return refresh_pass_offer_lines(at)


def test_a_pass_is_updated_when_its_offer_opens_and_again_when_it_closes(
    shop, breakfast, fake_apns, settings, django_capture_on_commit_callbacks  # noqa: F811
):
    card = card_of(make_member(shop))
    register(card, settings)
    capture = django_capture_on_commit_callbacks

    assert refresh(BEFORE_BREAKFAST, capture) == 0 and fake_apns.pushes == []
    assert refresh(DURING, capture) == 1
    assert PassOfferLine.objects.get(card=card).line == "Breakfast double points: 2x points"
    assert len(fake_apns.pushes) == 1
    assert refresh(LATER_DURING, capture) == 0 and len(fake_apns.pushes) == 1  # unchanged: no push

    assert refresh(AFTER, capture) == 1

    assert PassOfferLine.objects.get(card=card).line == "" and len(fake_apns.pushes) == 2
    card.refresh_from_db()
    assert card.pass_updated_at is not None


def test_only_passes_in_a_wallet_are_considered_and_nothing_without_a_wallet_configured(
    shop, breakfast, fake_apns, settings  # noqa: F811
):
    registered, unregistered = card_of(make_member(shop)), card_of(make_member(shop))
    register(registered, settings)

    assert refresh_pass_offer_lines(DURING) == 1
    assert not PassOfferLine.objects.filter(card=unregistered).exists()

    settings.APNS = {**settings.APNS, "KEY_PATH": ""}
    settings.GOOGLE_WALLET = {**settings.GOOGLE_WALLET, "SERVICE_ACCOUNT_FILE": ""}
    assert refresh_pass_offer_lines(AFTER) == 0
