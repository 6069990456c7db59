"""Third-party cards: a customer keeps other stores' plastic cards in the wallet by their barcodes."""
import pytest

from wallet.models import ExternalCard
from wallet.services import ExternalCardDraft, add_external_card

pytestmark = pytest.mark.django_db

URL = "/api/v1/external-cards/"
GYM = {"name": "City Gym", "barcode_value": "4006381333931", "barcode_format": "ean13", "color": "#ff8800"}


def url_of(card):
    return f"{URL}{card.pk}/"


@pytest.fixture
def gym_card(world):
    return add_external_card(
        world.customer.wallet,
        ExternalCardDraft(name="City Gym", barcode_value="4006381333931", barcode_format="ean13", note="Locker 12"),
    )


def snapshot(card):
    card.refresh_from_db()
    return (card.name, card.barcode_value, card.barcode_format, card.color, card.note)


# The owner ----------------------------------------------------------------------------------------


def test_customer_adds_a_card_by_its_barcode(customer_client, world):
    response = customer_client.post(URL, {**GYM, "barcode_value": "  4006381333931 "}, format="json")

    assert response.status_code == 201
    body = response.json()
    card = ExternalCard.objects.get(pk=body["id"])
    assert card.wallet == world.customer.wallet
    assert body == {
        "id": card.pk, "name": "City Gym", "barcode_value": "4006381333931", "barcode_format": "ean13",
        "color": "#FF8800", "note": "", "created_at": body["created_at"],
    }
    assert body["created_at"]


def test_a_card_without_a_colour_gets_the_default_one(customer_client, world):
    body = {key: value for key, value in GYM.items() if key != "color"}

    assert customer_client.post(URL, body, format="json").json()["color"] == "#6B7280"


def test_customer_lists_only_their_own_cards_paginated(customer_client, world, other_customer):
    add_external_card(other_customer.wallet, ExternalCardDraft(name="Theirs", barcode_value="12", barcode_format="itf"))
    for name in ("Library", "Bakery", "Cinema"):
        add_external_card(world.customer.wallet, ExternalCardDraft(name=name, barcode_value=name.upper(),
                                                                   barcode_format="code39"))

    page = customer_client.get(URL, {"page_size": 2}).json()
    rest = customer_client.get(URL, {"page_size": 2, "page": 2}).json()

    assert page["count"] == 3
    assert [card["name"] for card in page["results"] + rest["results"]] == ["Bakery", "Cinema", "Library"]


def test_customer_reads_one_card(customer_client, gym_card):
    response = customer_client.get(url_of(gym_card))

    assert response.status_code == 200
    assert response.json()["note"] == "Locker 12"


def test_customer_renames_a_card_and_only_that_changes(customer_client, gym_card):
    response = customer_client.patch(url_of(gym_card), {"name": "Gym (new)"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Gym (new)"
    assert snapshot(gym_card) == ("Gym (new)", "4006381333931", "ean13", "#6B7280", "Locker 12")


def test_changing_format_and_value_together_is_checked_together(customer_client, gym_card):
    response = customer_client.patch(
        url_of(gym_card), {"barcode_format": "upca", "barcode_value": "036000291452"}, format="json"
    )

    assert response.status_code == 200
    assert snapshot(gym_card)[1:3] == ("036000291452", "upca")


def test_a_new_format_is_checked_against_the_value_the_card_already_has(customer_client, gym_card):
    before = snapshot(gym_card)

    response = customer_client.patch(url_of(gym_card), {"barcode_format": "upca"}, format="json")

    assert response.status_code == 400
    assert "exactly 12 digits" in response.json()["error"]["fields"]["barcode_value"][0]
    assert snapshot(gym_card) == before


def test_a_new_value_is_checked_against_the_format_the_card_already_has(customer_client, gym_card):
    before = snapshot(gym_card)

    response = customer_client.patch(url_of(gym_card), {"barcode_value": "4006381333932"}, format="json")

    assert response.status_code == 400
    assert "check digit" in response.json()["error"]["message"]
    assert snapshot(gym_card) == before


def test_customer_removes_a_card(customer_client, gym_card):
    response = customer_client.delete(url_of(gym_card))

    assert response.status_code == 204
    assert not ExternalCard.objects.filter(pk=gym_card.pk).exists()
    assert customer_client.get(url_of(gym_card)).status_code == 404


def test_a_card_cannot_be_replaced_wholesale_with_put(customer_client, gym_card):
    before = snapshot(gym_card)

    response = customer_client.put(url_of(gym_card), {**GYM, "name": "Replaced"}, format="json")

    assert response.status_code == 405
    assert snapshot(gym_card) == before


# Everyone else ------------------------------------------------------------------------------------


def test_another_customer_cannot_see_edit_or_remove_the_card(other_customer_client, gym_card):
    before = snapshot(gym_card)

    responses = [
        other_customer_client.get(url_of(gym_card)),
        other_customer_client.patch(url_of(gym_card), {"name": "Mine now"}, format="json"),
        other_customer_client.delete(url_of(gym_card)),
    ]

    assert [response.status_code for response in responses] == [404, 404, 404]
    assert all(response.json()["error"]["code"] == "not_found" for response in responses)
    assert snapshot(gym_card) == before
    assert other_customer_client.get(URL).json()["count"] == 0


def test_cards_need_a_customer_login(anon_client, gym_card):
    before = snapshot(gym_card)

    responses = [
        anon_client.get(URL),
        anon_client.post(URL, GYM, format="json"),
        anon_client.get(url_of(gym_card)),
        anon_client.patch(url_of(gym_card), {"name": "Anon"}, format="json"),
        anon_client.delete(url_of(gym_card)),
    ]

    assert [response.status_code for response in responses] == [401] * 5
    assert snapshot(gym_card) == before
    assert ExternalCard.objects.count() == 1


# Bad input writes nothing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"barcode_value": "4006381333932"}, "barcode_value"),  # EAN-13 with a wrong check digit
        ({"barcode_format": "upca"}, "barcode_value"),  # a 13-digit value is not a UPC-A
        ({"barcode_format": "code39", "barcode_value": "lower case"}, "barcode_value"),
        ({"barcode_value": "   "}, "barcode_value"),
        ({"barcode_format": "upc-e"}, "barcode_format"),
        ({"color": "orange"}, "color"),
        ({"color": "#FF880"}, "color"),
        ({"color": "#GG8800"}, "color"),
        ({"name": ""}, "name"),
        ({"name": "n" * 81}, "name"),
        ({"note": "n" * 201}, "note"),
        ({"balance": 100}, "balance"),  # unknown field
        ({"id": 1}, "id"),  # read-only field
        ({"wallet": 1}, "wallet"),
    ],
)
def test_a_malformed_card_is_refused_and_nothing_is_written(customer_client, world, changes, field):
    response = customer_client.post(URL, {**GYM, **changes}, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert ExternalCard.objects.count() == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"color": "#12345"}, "color"),
        ({"name": "   "}, "name"),
        ({"barcode_format": "ean8"}, "barcode_value"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"owner": 1}, "owner"),
    ],
)
def test_a_malformed_edit_is_refused_and_changes_nothing(customer_client, gym_card, changes, field):
    before = snapshot(gym_card)

    response = customer_client.patch(url_of(gym_card), changes, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert snapshot(gym_card) == before


def test_a_required_field_left_out_is_refused(customer_client, world):
    body = {key: value for key, value in GYM.items() if key != "barcode_format"}

    response = customer_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["barcode_format"]
    assert ExternalCard.objects.count() == 0
