"""Joining a program plans the merchant's welcome offer message once, due at once, on push, email and the
pass; the welcome offer shows in the new member's offers until the card is older than its days."""
import datetime as dt

import pytest
from django.utils import timezone

from engagement.models import Message, Offer
from engagement.welcome import card_enrolled
from tests.api.conftest import client_for
from tests.engagement.test_offers import make_offer
from tests.factories import build_world, make_customer
from wallet.models import Card
from wallet.services import enroll, leave_program

pytestmark = pytest.mark.django_db


def welcome_offer(merchant, **fields) -> Offer:
    values = {"title": "Welcome: a free coffee", "kind": Offer.Kind.DISCOUNT, "multiplier": None,
              "discount_text": "One free filter coffee", "is_welcome": True, "welcome_valid_days": 14,
              "valid_from": timezone.now() - dt.timedelta(days=30)}
    values.update(fields)
    return make_offer(merchant, **values)


def test_joining_plans_the_welcome_message_once(world):
    offer = welcome_offer(world.merchant)
    customer = make_customer()
    joined_at = timezone.now().replace(microsecond=0)
    card = enroll(customer, world.program, occurred_at=joined_at).card
    message = Message.objects.get(card=card)
    assert (message.kind, message.offer, message.merchant, message.customer) == (
        "welcome", offer, world.merchant, customer)
    assert message.channels == ["push", "email", "wallet_pass"]
    assert message.due_at == joined_at and message.status == Message.Status.PENDING and message.campaign is None

    assert enroll(customer, world.program).created is False  # joining again
    leave_program(card)
    enroll(customer, world.program)  # rejoining reopens the card
    assert card_enrolled(Card.objects.get(pk=card.pk), timezone.now()) == []  # the hook run twice
    assert Message.objects.filter(card=card).count() == 1


def test_a_merchant_without_a_current_welcome_offer_plans_nothing(world):
    make_offer(world.merchant, title="Double points for everyone", valid_from=timezone.now() - dt.timedelta(days=1))
    welcome_offer(world.merchant, title="Switched off", is_active=False)
    welcome_offer(world.merchant, title="Over", valid_until=timezone.now() - dt.timedelta(days=1))
    welcome_offer(world.merchant, title="Not yet", valid_from=timezone.now() + dt.timedelta(days=1))
    card = enroll(make_customer(), world.program).card
    assert not Message.objects.filter(card=card).exists()


def test_each_welcome_offer_gets_its_message_and_other_merchants_offers_none(world):
    coffee, pastry = welcome_offer(world.merchant), welcome_offer(world.merchant, title="Welcome: a pastry")
    welcome_offer(build_world().merchant, title="Someone else's welcome")
    card = enroll(make_customer(), world.program).card
    assert set(Message.objects.filter(card=card).values_list("offer_id", flat=True)) == {coffee.pk, pastry.pk}


def test_the_welcome_offer_is_in_a_new_members_offers_and_not_an_older_members(world):
    offer = welcome_offer(world.merchant)
    newcomer = make_customer()
    enroll(newcomer, world.program)
    response = client_for(newcomer.user).get("/api/v1/offers/")
    assert [item["id"] for item in response.json()["results"]] == [offer.pk]

    # world.customer joined 15 days ago: past the offer's 14 days.
    Card.objects.filter(pk=world.card.pk).update(created_at=timezone.now() - dt.timedelta(days=15))
    response = client_for(world.customer.user).get("/api/v1/offers/")
    assert response.status_code == 200 and response.json()["results"] == []
