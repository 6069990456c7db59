"""Owners and managers set and reset cashiers' counter PINs in the admin, for their own merchant only."""
import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from merchants.models import StaffMember
from merchants.services import grant_staff_access
from pos_integration.cashiers import MAX_PIN_ATTEMPTS
from tests.factories import build_world
from tests.pos.helpers import PIN, as_cashier, make_cashier, till

pytestmark = pytest.mark.django_db

NEW_PIN = "73915062"  # eight digits that appear nowhere else in a page, so a leak is found by searching


def _person(merchant, role, name):
    user = get_user_model().objects.create_user(username=f"{name}-{merchant.pk}", first_name=name.title(),
                                                password=None)
    grant_staff_access(merchant, user, role)
    return user


@pytest.fixture
def shop(world):
    world.owner = _person(world.merchant, "owner", "olivia")
    world.manager = _person(world.merchant, "manager", "max")
    world.cashier = make_cashier(world.merchant)  # signs in with PIN
    return world


def _pin_url(staff):
    return reverse("admin:merchants_staffmember_pin", args=[staff.pk])


def _set_pin(client, staff, pin, confirmation=None):
    return client.post(_pin_url(staff), {"pin": pin, "pin_confirmation": pin if confirmation is None else confirmation})


def _check(device, staff, pin):
    """The till's PIN check: 200 signs in, 403 wrong PIN, 423 locked."""
    return device.post("/api/pos/v1/cashiers/check/", **as_cashier(staff, pin))


def _hash(staff):
    return StaffMember.objects.values_list("pin_hash", flat=True).get(pk=staff.pk)


def test_an_owner_gives_a_new_cashier_a_pin_the_till_then_accepts(client, shop):
    newcomer = grant_staff_access(shop.merchant, _person(shop.merchant, "cashier", "nina"), "cashier")
    client.force_login(shop.owner)
    change_page = client.get(reverse("admin:merchants_staffmember_change", args=[newcomer.pk])).content.decode()
    assert "No PIN yet" in change_page and _pin_url(newcomer) in change_page
    form_page = client.get(_pin_url(newcomer)).content.decode()
    assert form_page.count('type="password"') == 2 and 'inputmode="numeric"' in form_page

    response = _set_pin(client, newcomer, NEW_PIN)

    assert response.status_code == 302
    device = till(shop)
    assert _check(device, newcomer, NEW_PIN).json() == {"cashier": {"id": newcomer.pk, "name": "Nina"}}
    latest = newcomer.history.first()
    assert (latest.history_user, latest.history_change_reason) == (shop.owner, "Counter PIN set")
    history_page = client.get(reverse("admin:merchants_staffmember_history", args=[newcomer.pk])).content.decode()
    assert "Counter PIN set" in history_page and _hash(newcomer) not in history_page


def test_a_manager_unlocks_a_locked_cashier_by_giving_a_new_pin(client, shop):
    device = till(shop)
    for _ in range(MAX_PIN_ATTEMPTS):
        _check(device, shop.cashier, "1357")
    assert _check(device, shop.cashier, PIN).status_code == 423
    client.force_login(shop.manager)
    change_page = client.get(reverse("admin:merchants_staffmember_change", args=[shop.cashier.pk]))
    assert "Locked after too many wrong PINs until" in change_page.content.decode()

    assert _set_pin(client, shop.cashier, NEW_PIN).status_code == 302

    assert _check(device, shop.cashier, NEW_PIN).status_code == 200
    assert _check(device, shop.cashier, PIN).status_code == 403  # the forgotten PIN is gone
    assert "Locked" not in client.get(reverse("admin:merchants_staffmember_change", args=[shop.cashier.pk])
                                      ).content.decode()


def test_a_weak_pin_is_refused_with_the_reason_and_the_old_pin_still_works(client, shop):
    before = _hash(shop.cashier)
    client.force_login(shop.owner)

    response = _set_pin(client, shop.cashier, "4567")

    assert response.status_code == 200
    assert "Choose a PIN that is not a repeated or running sequence." in response.content.decode()
    assert _hash(shop.cashier) == before and _check(till(shop), shop.cashier, PIN).status_code == 200
    assert not shop.cashier.history.filter(history_change_reason="Counter PIN set").exists()


def test_a_confirmation_that_differs_is_refused_and_nothing_changes(client, shop):
    before = _hash(shop.cashier)
    client.force_login(shop.owner)

    response = _set_pin(client, shop.cashier, NEW_PIN, confirmation="73915063")

    assert response.status_code == 200 and "The two PINs differ." in response.content.decode()
    assert _hash(shop.cashier) == before and _check(till(shop), shop.cashier, NEW_PIN).status_code == 403


def test_another_merchants_owner_cannot_find_the_page_and_nothing_changes(client, shop):
    rival = build_world()
    rival_owner = _person(rival.merchant, "owner", "rex")
    before = _hash(shop.cashier)
    client.force_login(rival_owner)

    assert client.get(_pin_url(shop.cashier)).status_code == 404
    assert _set_pin(client, shop.cashier, NEW_PIN).status_code == 404

    assert _hash(shop.cashier) == before


def test_cashiers_cannot_reach_the_page_and_managers_cannot_reset_an_owners_pin(client, shop):
    cashier_user = shop.cashier.user
    cashier_user.is_staff = True  # even with the staff flag set by hand
    cashier_user.save()
    client.force_login(cashier_user)
    refused = _set_pin(client, shop.cashier, NEW_PIN)
    assert refused.status_code == 302 and reverse("admin:login") in refused["Location"]

    owner_staff = StaffMember.objects.get(user=shop.owner)
    client.force_login(shop.manager)
    owner_page = client.get(reverse("admin:merchants_staffmember_change", args=[owner_staff.pk])).content.decode()
    assert _pin_url(owner_staff) not in owner_page
    assert _set_pin(client, owner_staff, NEW_PIN).status_code == 403

    assert _check(till(shop), shop.cashier, NEW_PIN).status_code == 403 and _hash(owner_staff) == ""


def test_a_pin_posted_without_the_forms_csrf_token_is_refused(shop):
    before = _hash(shop.cashier)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(shop.owner)

    assert _set_pin(browser, shop.cashier, NEW_PIN).status_code == 403

    assert _hash(shop.cashier) == before


def test_the_pin_never_appears_in_a_page_or_a_log(client, shop, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(shop.owner)
    pages = [
        _set_pin(client, shop.cashier, NEW_PIN, confirmation="73915063"),
        _set_pin(client, shop.cashier, "88888888"),
        _set_pin(client, shop.cashier, NEW_PIN, confirmation=""),
    ]
    done = _set_pin(client, shop.cashier, NEW_PIN)
    pages += [client.get(done["Location"]),
              client.get(reverse("admin:merchants_staffmember_history", args=[shop.cashier.pk]))]

    assert _check(till(shop), shop.cashier, NEW_PIN).status_code == 200
    bodies = [page.content.decode() for page in pages]
    assert all(NEW_PIN not in body and "88888888" not in body for body in bodies)
    assert all(_hash(shop.cashier) not in body for body in bodies)
    assert NEW_PIN not in caplog.text and "88888888" not in caplog.text
