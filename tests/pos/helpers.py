"""Short calls for counter tests: a till client for a world, a cashier with a PIN, cashier headers."""
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from merchants.services import grant_staff_access
from pos_integration.cashiers import set_pin
from pos_integration.services import register_device

PIN = "2468"


def till(world, name="Till") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {register_device(world.store, name).key}")
    return client


def make_cashier(merchant, first_name="Sam", pin=PIN):
    user = get_user_model().objects.create_user(
        username=f"cashier-{first_name.lower()}-{merchant.pk}", first_name=first_name, password=None
    )
    staff = grant_staff_access(merchant, user, "cashier")
    set_pin(staff, pin)
    staff.refresh_from_db()
    return staff


def as_cashier(staff, pin=PIN) -> dict:
    return {"HTTP_TESSERA_CASHIER": str(staff.pk), "HTTP_TESSERA_CASHIER_PIN": pin}
