"""Coupons through the customer API: listing, showing, cancelling for the points back; a used coupon
cannot be cancelled; another customer's coupons stay out of reach. And the service that marks a
coupon used at the counter."""
import datetime as dt

import pytest
from django.utils import timezone

from merchants.models import Reward
from tests.factories import make_card
from tests.wallet.helpers import buy, written_rows
from wallet.errors import CouponNotUsable
from wallet.models import Card, DomainEvent, LedgerEntry, Redemption
from wallet.services import cancel_redemption, mark_coupon_used, redeem_reward

pytestmark = pytest.mark.django_db

COUPONS = "/api/v1/coupons/"


def coupon_url(coupon, action=""):
    return f"{COUPONS}{coupon.pk}/{action + '/' if action else ''}"



def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def issue(card, reward, key) -> Redemption:
    return Redemption.objects.get(pk=redeem_reward(card, reward, idempotency_key=key).redemption_id)


def balance(card) -> int:
    return Card.objects.get(pk=card.pk).balance


@pytest.fixture
def coupon(world):
    """An issued Coffee coupon on the world's card, which had 250 points and now has 150."""
    buy(world.card, 25000)
    return issue(world.card, world.coffee, "coffee-1")


# Listing and showing ---------------------------------------------------------------------------------

def test_coupons_are_listed_newest_first_and_filter_by_status(world, customer_client):
    cake = Reward.objects.create(program=world.program, name="Cake", points_cost=50)
    buy(world.card, 50000)
    first = issue(world.card, world.coffee, "k-1")
    second = issue(world.card, cake, "k-2")
    third = issue(world.card, world.coffee, "k-3")
    mark_coupon_used(first)
    cancel_redemption(second, idempotency_key="cancel-k-2")

    listed = customer_client.get(COUPONS).json()
    assert listed["count"] == 3
    assert [c["id"] for c in listed["results"]] == [third.pk, second.pk, first.pk]
    by_status = {
        status: [c["id"] for c in customer_client.get(COUPONS, {"status": status}).json()["results"]]
        for status in ("issued", "used", "cancelled")
    }
    assert by_status == {"issued": [third.pk], "used": [first.pk], "cancelled": [second.pk]}


def test_filtering_by_an_unknown_status_is_a_400(world, customer_client, coupon):
    error = assert_error(customer_client.get(COUPONS, {"status": "expired"}), 400, "validation_failed")
    assert "status" in error["fields"]


def test_coupon_detail_shows_code_reward_card_and_usability(world, customer_client, coupon):
    shown = customer_client.get(coupon_url(coupon)).json()
    assert shown["code"] == coupon.coupon_code and shown["status"] == "issued" and shown["is_usable"] is True
    assert shown["points"] == 100 and shown["reward"] == {"id": world.coffee.pk, "name": "Coffee"}
    assert shown["card"] == {"id": world.card.pk, "number": world.card.number}
    assert shown["merchant"]["id"] == world.merchant.pk
    assert shown["used_at"] is None and shown["cancelled_at"] is None

    mark_coupon_used(coupon)
    shown = customer_client.get(coupon_url(coupon)).json()
    assert shown["status"] == "used" and shown["is_usable"] is False and shown["used_at"] is not None


def test_an_expired_coupon_is_shown_as_not_usable(world, customer_client):
    buy(world.card, 25000)
    old = Redemption.objects.get(pk=redeem_reward(
        world.card, world.coffee, idempotency_key="old", occurred_at=timezone.now() - dt.timedelta(days=31)
    ).redemption_id)
    shown = customer_client.get(coupon_url(old)).json()
    assert shown["status"] == "issued" and shown["is_usable"] is False


# Cancelling ------------------------------------------------------------------------------------------

def test_cancelling_an_issued_coupon_returns_its_points_through_one_reversing_entry(
    world, customer_client, coupon
):
    response = customer_client.post(coupon_url(coupon, "cancel"))
    assert response.status_code == 200
    assert response.json()["balance"] == 250
    assert response.json()["coupon"]["status"] == "cancelled"
    assert response.json()["coupon"]["cancelled_at"] is not None
    assert balance(world.card) == 250
    reversal = world.card.entries.get(kind=LedgerEntry.Kind.REDEMPTION_CANCEL)
    assert reversal.delta == 100 and reversal.reverses.redemption_id == coupon.pk
    history = customer_client.get(f"/api/v1/cards/{world.card.pk}/history/").json()["results"]
    assert [entry["kind"] for entry in history] == ["redemption_cancel", "redeem", "earn"]


def test_cancelling_twice_without_a_key_replays_the_first_answer_and_returns_points_once(
    world, customer_client, coupon
):
    first = customer_client.post(coupon_url(coupon, "cancel"))
    before = written_rows()
    again = customer_client.post(coupon_url(coupon, "cancel"))
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert written_rows() == before
    assert world.card.entries.filter(kind=LedgerEntry.Kind.REDEMPTION_CANCEL).count() == 1
    assert balance(world.card) == 250


def test_cancelling_again_under_a_new_key_is_a_conflict_and_writes_nothing(world, customer_client, coupon):
    assert customer_client.post(coupon_url(coupon, "cancel"), HTTP_IDEMPOTENCY_KEY="cancel-a").status_code == 200
    before = written_rows()
    response = customer_client.post(coupon_url(coupon, "cancel"), HTTP_IDEMPOTENCY_KEY="cancel-b")
    assert_error(response, 409, "redemption_not_cancellable")
    assert written_rows() == before
    assert balance(world.card) == 250


def test_a_used_coupon_cannot_be_cancelled(world, customer_client, coupon):
    mark_coupon_used(coupon)
    before = written_rows()
    assert_error(customer_client.post(coupon_url(coupon, "cancel")), 409, "redemption_not_cancellable")
    assert_error(customer_client.post(coupon_url(coupon, "cancel"), HTTP_IDEMPOTENCY_KEY="k"), 409,
                 "redemption_not_cancellable")
    assert written_rows() == before
    assert balance(world.card) == 150
    assert Redemption.objects.get(pk=coupon.pk).status == Redemption.Status.USED


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_a_malformed_idempotency_key_is_a_400(world, customer_client, coupon, key):
    before = written_rows()
    error = assert_error(customer_client.post(coupon_url(coupon, "cancel"), HTTP_IDEMPOTENCY_KEY=key), 400,
                         "invalid_request")
    assert "Idempotency-Key" in error["fields"]
    assert written_rows() == before


def test_cancelling_with_a_body_field_is_a_400_and_writes_nothing(world, customer_client, coupon):
    before = written_rows()
    error = assert_error(customer_client.post(coupon_url(coupon, "cancel"), {"points": 10_000}, format="json"),
                         400, "validation_failed")
    assert "points" in error["fields"]
    assert written_rows() == before
    assert Redemption.objects.get(pk=coupon.pk).status == Redemption.Status.ISSUED


# Whose coupon ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, action", [("get", ""), ("post", "cancel")])
def test_another_customers_coupon_is_not_found_and_nothing_is_written(
    world, other_customer_client, coupon, method, action
):
    before = written_rows()
    response = getattr(other_customer_client, method)(coupon_url(coupon, action))
    assert_error(response, 404, "not_found")
    assert written_rows() == before
    assert Redemption.objects.get(pk=coupon.pk).status == Redemption.Status.ISSUED


def test_coupon_list_holds_only_my_coupons(world, customer_client, other_customer, other_customer_client, coupon):
    theirs = make_card(world.program, other_customer)
    buy(theirs, 25000)
    their_coupon = issue(theirs, world.coffee, "theirs-1")
    assert [c["id"] for c in customer_client.get(COUPONS).json()["results"]] == [coupon.pk]
    assert [c["id"] for c in other_customer_client.get(COUPONS).json()["results"]] == [their_coupon.pk]


def test_coupons_need_a_logged_in_customer(world, anon_client, coupon):
    assert_error(anon_client.get(COUPONS), 401, "not_authenticated")
    assert_error(anon_client.post(coupon_url(coupon, "cancel")), 401, "not_authenticated")
    assert Redemption.objects.get(pk=coupon.pk).status == Redemption.Status.ISSUED


@pytest.mark.parametrize("coupon_id", [0, 10**25])
def test_coupon_ids_out_of_range_are_not_found(world, customer_client, coupon_id):
    assert_error(customer_client.get(f"{COUPONS}{coupon_id}/"), 404, "not_found")
    assert_error(customer_client.post(f"{COUPONS}{coupon_id}/cancel/"), 404, "not_found")


# Using a coupon at the counter (the service the POS calls) -------------------------------------------

def test_using_a_coupon_marks_it_used_once_and_moves_no_points(world, coupon):
    entries_before = LedgerEntry.objects.count()
    used = mark_coupon_used(coupon)
    assert used.status == Redemption.Status.USED and used.used_at is not None
    assert Redemption.objects.get(pk=coupon.pk).status == Redemption.Status.USED
    assert LedgerEntry.objects.count() == entries_before
    assert balance(world.card) == 150
    event = DomainEvent.objects.get(event_type="wallet.coupon.used")
    assert event.card_id == world.card.pk and event.payload["redemption_id"] == coupon.pk

    with pytest.raises(CouponNotUsable, match="already used"):
        mark_coupon_used(coupon)
    assert DomainEvent.objects.filter(event_type="wallet.coupon.used").count() == 1


def test_a_cancelled_or_expired_coupon_cannot_be_used(world, coupon):
    cancel_redemption(coupon, idempotency_key="cancel-1")
    with pytest.raises(CouponNotUsable, match="cancelled"):
        mark_coupon_used(coupon)

    buy(world.card, 25000)
    late = issue(world.card, world.coffee, "coffee-2")
    with pytest.raises(CouponNotUsable, match="expired"):
        mark_coupon_used(late, occurred_at=late.expires_at)
    assert Redemption.objects.get(pk=late.pk).status == Redemption.Status.ISSUED
    assert not DomainEvent.objects.filter(event_type="wallet.coupon.used").exists()
