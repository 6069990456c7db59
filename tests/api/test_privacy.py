"""A customer's privacy rights through the API: download everything held about me, and erase me."""
import json
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models
from drf_spectacular.generators import SchemaGenerator

from engagement.models import PushDevice
from merchants.models import Reward
from tests.api.conftest import client_for
from tests.factories import make_card, make_merchant, make_program
from tests.wallet.helpers import buy
from wallet.models import Card, CommunicationPreference, Customer, DomainEvent, ExternalCard, Purchase, Redemption
from wallet.services import enroll, redeem_reward

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"
EXPORT, ERASE, ME = "/api/v1/me/export/", "/api/v1/me/erase/", "/api/v1/me/"
NAME, EMAIL, PHONE, FAMILY_NAME = "Zelda", "zelda.erase@example.com", "+15550001234", "Zeldington"


def spend_a_little(card, key):
    buy(card, 25000)  # 250 points at one point per euro
    reward = Reward.objects.create(program=card.program, name="Coffee", points_cost=100)
    return redeem_reward(card, reward, idempotency_key=key)


@pytest.fixture
def zelda(world, anon_client):
    """Registered through the API, with a home, a card at two merchants, purchases, a coupon, a
    third-party card and communication preferences."""
    response = anon_client.post(
        "/api/v1/auth/register/", {"email": EMAIL, "phone": PHONE, "first_name": NAME, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201
    customer = Customer.objects.select_related("user", "wallet").get(user__email=EMAIL)
    customer.user.last_name = FAMILY_NAME
    customer.user.save(update_fields=["last_name"])
    client = client_for(customer.user)
    assert client.patch(ME, {"home_latitude": 48.8566, "home_longitude": 2.3522, "birth_month": 7, "birth_day": 14},
                        format="json").status_code == 200
    assert client.get("/api/v1/offers/", {"latitude": 48.86, "longitude": 2.35}).status_code == 200  # last seen
    assert client.post("/api/v1/push-devices/", {"platform": "apns", "token": "ab" * 32},
                       format="json").status_code == 201

    cafe_card = enroll(customer, world.program).card
    bookshop = make_merchant(name="Bookshop")
    book_card = make_card(make_program(bookshop), customer)
    coupons = [spend_a_little(cafe_card, "cafe-1").coupon_code, spend_a_little(book_card, "books-1").coupon_code]
    ExternalCard.objects.create(
        wallet=customer.wallet, name=f"{NAME}'s gym", barcode_value="GYM-778899", barcode_format="code128",
        note=f"member {EMAIL}",
    )
    for merchant in (world.merchant, bookshop):
        CommunicationPreference.objects.create(customer=customer, merchant=merchant, channel="email", is_opted_in=True)
    customer.refresh_from_db()
    customer.tokens = response.json()["tokens"]
    customer.cards, customer.coupons = [cafe_card, book_card], coupons
    customer.merchant_ids = {world.merchant.pk, bookshop.pk}
    return customer


def tables_containing(text: str) -> list[str]:
    """Every model whose text, char or JSON columns hold `text` (any letter case) in some row."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        columns = [
            field.name for field in model._meta.concrete_fields
            if isinstance(field, (models.CharField, models.TextField, models.JSONField))
        ]
        query = models.Q()
        for column in columns:
            query |= models.Q(**{f"{column}__icontains": text})
        if columns and model._base_manager.filter(query).exists():
            found.append(model._meta.label)
    return found


# --- export ---------------------------------------------------------------------------------------


def test_export_is_a_json_download_of_my_cards_entries_and_coupons_and_nothing_of_anyone_else(zelda, world):
    other_card = world.card  # another customer's card in the same program
    other_coupon = spend_a_little(other_card, "other-cafe").coupon_code

    response = client_for(zelda.user).get(EXPORT)
    assert response.status_code == 200
    assert re.match(r'attachment; filename="tessera-export-\d+-[\d-]+\.json"', response["Content-Disposition"])
    data = json.loads(response.content)
    text = response.content.decode()

    assert data["profile"]["email"] == EMAIL and data["profile"]["phone"] == PHONE
    assert (data["profile"]["birth_month"], data["profile"]["birth_day"]) == (7, 14)
    assert data["profile"]["last_seen_latitude"] == "48.860000" and data["profile"]["last_seen_at"]
    assert data["profile"]["first_name"] == NAME and data["profile"]["home_latitude"] == "48.856600"
    assert {card["number"] for card in data["cards"]} == {card.number for card in zelda.cards}
    for card in zelda.cards:
        exported = next(item for item in data["cards"] if item["number"] == card.number)
        assert exported["balance"] == Card.objects.get(pk=card.pk).balance == 150
        entry_ids = sorted(card.entries.values_list("id", flat=True))
        assert [entry["id"] for entry in exported["ledger_entries"]] == entry_ids
        assert sum(entry["delta"] for entry in exported["ledger_entries"]) == exported["balance"]
        assert len(exported["purchases"]) == Purchase.objects.filter(card=card).count() == 1
    exported_coupons = {redemption["coupon_code"] for card in data["cards"] for redemption in card["redemptions"]}
    assert exported_coupons == set(zelda.coupons)
    assert data["external_cards"][0]["barcode_value"] == "GYM-778899"
    assert {(item["merchant_id"], item["channel"]) for item in data["communication"]["preferences"]} == {
        (merchant_id, "email") for merchant_id in zelda.merchant_ids
    }
    assert data["communication"]["communication_paused"] is False

    assert other_card.number not in text and other_coupon not in text
    assert world.customer.user.email not in text


def test_export_needs_a_customer_token(anon_client, db):
    assert anon_client.get(EXPORT).status_code == 401


# --- erasure --------------------------------------------------------------------------------------


def test_erasure_removes_every_trace_of_the_person_and_keeps_the_books(zelda, anon_client):
    personal = [NAME, EMAIL, PHONE, FAMILY_NAME]
    assert all(tables_containing(value) for value in personal)  # the scan does find them while they exist
    redemption_ids = set(Redemption.objects.filter(card__in=zelda.cards).values_list("pk", flat=True))
    purchase_count = Purchase.objects.filter(card__in=zelda.cards).count()

    response = client_for(zelda.user).post(ERASE, {"password": PASSWORD}, format="json")
    assert response.status_code == 204, response.content

    for value in personal:
        assert tables_containing(value) == [], value
    zelda.refresh_from_db()
    user = zelda.user
    user.refresh_from_db()
    assert user.username.startswith(f"erased-{zelda.pk}-") and not user.is_active
    assert not user.has_usable_password()
    assert zelda.erased_at is not None and zelda.home_latitude is None and zelda.home_longitude is None
    assert zelda.last_seen_latitude is None and zelda.last_seen_at is None and zelda.birth_month is None
    assert not PushDevice.objects.filter(customer=zelda).exists()
    assert not ExternalCard.objects.filter(wallet__customer=zelda).exists()
    assert not CommunicationPreference.objects.filter(customer=zelda).exists()

    call_command("check_ledger")  # raises if any balance differs from its entries
    for card in zelda.cards:
        card.refresh_from_db()
        assert card.status == Card.Status.CLOSED and card.balance == 150
        assert card.entries.count() == 2  # earned, redeemed
    assert set(Redemption.objects.filter(card__in=zelda.cards).values_list("pk", flat=True)) == redemption_ids
    assert Purchase.objects.filter(card__in=zelda.cards).count() == purchase_count

    erased = DomainEvent.objects.filter(event_type="wallet.customer.erased")
    assert sorted(erased.values_list("merchant_id", flat=True)) == sorted(zelda.merchant_ids)
    assert all(event.payload == {"customer_id": zelda.pk} for event in erased)
    withdrawn = DomainEvent.objects.filter(event_type="wallet.consent.changed", customer_id=zelda.pk)
    assert {(event.merchant_id, event.payload["opted_in"]) for event in withdrawn} == {
        (merchant_id, False) for merchant_id in zelda.merchant_ids
    }

    old_access = client_for()
    old_access.credentials(HTTP_AUTHORIZATION=f"Bearer {zelda.tokens['access']}")
    assert old_access.get(ME).status_code in (401, 403)
    refresh = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": zelda.tokens["refresh"]}, format="json")
    assert refresh.status_code == 401
    login = anon_client.post("/api/v1/auth/token/", {"login": EMAIL, "password": PASSWORD}, format="json")
    assert login.status_code == 401


def test_after_erasure_the_old_token_opens_no_customer_endpoint(zelda):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {zelda.tokens['access']}")
    assert client.get(ME).status_code == 200
    assert client.post(ERASE, {"password": PASSWORD}, format="json").status_code == 204

    schema = SchemaGenerator().get_schema(request=None, public=True)
    checked = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/api/v1/") or {} in operation.get("security", [{}]):
                continue  # public: register, log in, refresh, the merchant directory
            url = re.sub(r"\{[^}]+\}", "1", path)
            response = getattr(client, method)(url, {}, format="json")
            assert response.status_code in (401, 403), (method, path, response.status_code)
            checked.append(f"{method} {path}")
    assert {"get /api/v1/me/", "patch /api/v1/me/", "get /api/v1/me/export/", "post /api/v1/me/erase/"} <= set(
        checked
    )


def test_wrong_password_erases_nothing(zelda):
    client = client_for(zelda.user)
    response = client.post(ERASE, {"password": "not-my-password"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["password"]
    zelda.refresh_from_db()
    zelda.user.refresh_from_db()
    assert zelda.erased_at is None and zelda.user.email == EMAIL and zelda.user.is_active
    assert zelda.home_latitude == Decimal("48.856600")
    assert all(Card.objects.get(pk=card.pk).is_active for card in zelda.cards)
    assert ExternalCard.objects.filter(wallet__customer=zelda).exists()
    assert not DomainEvent.objects.filter(event_type="wallet.customer.erased").exists()
    assert client.get(ME).status_code == 200


def test_an_erased_email_and_phone_can_register_again_as_a_new_customer(zelda, anon_client):
    assert client_for(zelda.user).post(ERASE, {"password": PASSWORD}, format="json").status_code == 204
    again = anon_client.post(
        "/api/v1/auth/register/", {"email": EMAIL, "phone": PHONE, "password": PASSWORD}, format="json"
    )
    assert again.status_code == 201
    assert again.json()["profile"]["id"] != zelda.pk
    export = client_for(Customer.objects.get(pk=again.json()["profile"]["id"]).user).get(EXPORT).json()
    assert export["cards"] == [] and export["external_cards"] == []
