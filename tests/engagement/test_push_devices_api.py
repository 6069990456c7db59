"""POST /api/v1/push-devices/ and DELETE /api/v1/push-devices/{token}/, as the wallet app calls them."""
import threading

import pytest
from django.db import connection

from engagement.models import PushDevice
from engagement.push_devices import MAX_ACTIVE_DEVICES_PER_CUSTOMER, register_push_device
from tests.api.conftest import client_for
from tests.factories import build_world, make_customer

URL = "/api/v1/push-devices/"
ANDROID = "dQw4w9WgXcQ:APA91bH" + "x" * 140
IPHONE = "ab" * 32


def rows():
    return list(PushDevice.objects.order_by("pk").values_list("customer_id", "platform", "token", "is_active"))


def test_a_new_phone_is_registered_with_201_and_the_token_is_not_echoed(world, customer_client):
    response = customer_client.post(URL, {"platform": "fcm", "token": ANDROID}, format="json")

    assert response.status_code == 201
    assert response.json()["platform"] == "fcm" and response.json()["is_active"] is True
    assert ANDROID not in response.content.decode()
    assert rows() == [(world.customer.pk, "fcm", ANDROID, True)]


def test_registering_again_is_200_and_keeps_one_row(world, customer_client):
    customer_client.post(URL, {"platform": "apns", "token": IPHONE}, format="json")
    response = customer_client.post(URL, {"platform": "apns", "token": IPHONE.upper()}, format="json")

    assert response.status_code == 200
    assert rows() == [(world.customer.pk, "apns", IPHONE, True)]


def test_a_token_the_provider_dropped_is_active_again_when_the_phone_registers_it(world, customer_client):
    device, _ = register_push_device(world.customer, "fcm", ANDROID)
    PushDevice.objects.filter(pk=device.pk).update(is_active=False)

    assert customer_client.post(URL, {"platform": "fcm", "token": ANDROID}, format="json").status_code == 200
    assert rows() == [(world.customer.pk, "fcm", ANDROID, True)]


def test_a_phone_that_changed_hands_moves_to_its_new_owner(world, customer_client, other_customer,
                                                           other_customer_client):
    customer_client.post(URL, {"platform": "fcm", "token": ANDROID}, format="json")

    response = other_customer_client.post(URL, {"platform": "fcm", "token": ANDROID}, format="json")

    assert response.status_code == 200
    assert rows() == [(other_customer.pk, "fcm", ANDROID, True)]
    assert customer_client.delete(f"{URL}{ANDROID}/").status_code == 404  # no longer the first owner's


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "apns", "token": "not-hex-at-all-" + "z" * 50}, "token"),
        ({"platform": "apns", "token": "ab"}, "token"),
        ({"platform": "fcm", "token": "short:token"}, "token"),
        ({"platform": "fcm", "token": "has spaces " + "x" * 80}, "token"),
        ({"platform": "fcm", "token": "x" * 513}, "token"),
        ({"platform": "webpush", "token": ANDROID}, "platform"),
        ({"platform": "fcm"}, "token"),
        ({"platform": "fcm", "token": ANDROID, "customer": 1}, "customer"),
    ],
)
def test_a_malformed_registration_is_400_naming_the_field_and_writes_nothing(customer_client, body, field):
    response = customer_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert rows() == []


def test_deleting_my_phone_stops_pushes_to_it(world, customer_client):
    customer_client.post(URL, {"platform": "apns", "token": IPHONE}, format="json")

    response = customer_client.delete(f"{URL}{IPHONE.upper()}/")

    assert response.status_code == 204
    assert rows() == []


def test_another_customers_phone_cannot_be_deleted_and_looks_unknown(world, customer_client, other_customer,
                                                                      other_customer_client):
    register_push_device(other_customer, "fcm", ANDROID)

    response = customer_client.delete(f"{URL}{ANDROID}/")
    unknown = customer_client.delete(f"{URL}{'cd' * 32}/")

    assert response.status_code == 404 and unknown.status_code == 404
    assert response.json() == unknown.json()
    assert rows() == [(other_customer.pk, "fcm", ANDROID, True)]


def test_only_signed_in_customers_may_register(db):
    response = client_for(None).post(URL, {"platform": "fcm", "token": ANDROID}, format="json")
    assert response.status_code == 401
    assert rows() == []


def test_a_customer_keeps_the_most_recently_registered_phones_active(world):
    tokens = [f"{index:02x}" * 32 for index in range(MAX_ACTIVE_DEVICES_PER_CUSTOMER + 2)]
    for token in tokens:
        register_push_device(world.customer, "apns", token)
    register_push_device(world.customer, "apns", tokens[0])  # the oldest phone signs in again

    active = set(PushDevice.objects.filter(is_active=True).values_list("token", flat=True))
    assert len(active) == MAX_ACTIVE_DEVICES_PER_CUSTOMER
    assert tokens[0] in active and tokens[1] not in active and tokens[2] not in active


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_customers_registering_the_same_token_at_once_leave_one_row():
    world = build_world()
    customers = [world.customer, make_customer()]
    barrier = threading.Barrier(len(customers))
    results, errors = [], []

    def register(customer):
        try:
            barrier.wait(timeout=10)
            results.append(register_push_device(customer, "fcm", ANDROID)[1])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(customer,)) for customer in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [False, True]  # one created it, the other moved it
    assert PushDevice.objects.filter(token=ANDROID).count() == 1

