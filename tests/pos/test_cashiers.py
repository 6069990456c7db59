"""Cashier PINs: who may sign in at a till, and the attempt limit that protects a short PIN."""
import datetime as dt

import pytest

from core.errors import ValidationFailed
from pos_integration.cashiers import MAX_PIN_ATTEMPTS, CashierLocked, CashierPinInvalid, set_pin, verify_cashier
from pos_integration.services import register_device
from tests.factories import build_world
from tests.pos.helpers import PIN, as_cashier, make_cashier, till

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    world = build_world()
    world.cashier = make_cashier(world.merchant)
    return world


def check(client, staff, pin=PIN):
    return client.post("/api/pos/v1/cashiers/check/", **as_cashier(staff, pin))


def test_the_till_lists_its_cashiers_and_a_right_pin_signs_in(shop):
    client = till(shop)
    device = client.get("/api/pos/v1/device/").json()
    assert device["cashiers"] == [{"id": shop.cashier.pk, "name": "Sam"}]
    assert device["currency"] == "EUR" and device["currency_exponent"] == 2
    response = check(client, shop.cashier)
    assert response.status_code == 200 and response.json() == {"cashier": {"id": shop.cashier.pk, "name": "Sam"}}
    assert "pin" not in response.text.lower().replace("pin_", "")


def test_five_wrong_pins_lock_the_cashier_and_then_even_the_right_pin_is_refused(shop):
    client = till(shop)
    for attempt in range(1, MAX_PIN_ATTEMPTS):
        response = check(client, shop.cashier, "1357")
        assert response.status_code == 403
        assert response.json()["error"]["fields"]["attempts_left"] == [str(MAX_PIN_ATTEMPTS - attempt)]
    locked = check(client, shop.cashier, "1357")
    assert locked.status_code == 423 and locked.json()["error"]["code"] == "cashier_locked"
    assert check(client, shop.cashier, PIN).status_code == 423


def test_the_lock_ends_after_its_time_and_a_right_pin_resets_the_count(shop):
    device = register_device(shop.store, "Till").device
    later = dt.datetime.now(dt.UTC)
    for _ in range(MAX_PIN_ATTEMPTS):
        with pytest.raises((CashierPinInvalid, CashierLocked)):
            verify_cashier(device, shop.cashier.pk, "1357", now=later)
    with pytest.raises(CashierLocked):
        verify_cashier(device, shop.cashier.pk, PIN, now=later + dt.timedelta(minutes=14))
    assert verify_cashier(device, shop.cashier.pk, PIN, now=later + dt.timedelta(minutes=16)) == shop.cashier
    shop.cashier.refresh_from_db()
    assert shop.cashier.failed_pin_attempts == 0 and shop.cashier.pin_locked_until is None


def test_a_cashier_of_another_merchant_or_without_a_pin_cannot_sign_in(shop):
    theirs = build_world()
    stranger = make_cashier(theirs.merchant, "Kim")
    assert check(till(shop), stranger).status_code == 403
    shop.cashier.is_active = False
    shop.cashier.save()
    assert check(till(shop), shop.cashier).status_code == 403


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "0000", "1234", "9876", ""])
def test_pins_that_are_too_short_long_or_obvious_are_refused(shop, pin):
    with pytest.raises(ValidationFailed):
        set_pin(shop.cashier, pin)


def test_the_pin_is_stored_hashed(shop):
    assert shop.cashier.pin_hash.startswith("$argon2") and PIN not in shop.cashier.pin_hash
