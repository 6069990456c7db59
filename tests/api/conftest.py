"""API clients, one per kind of caller, authenticated the way the mobile app is (JWT bearer)."""
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import make_customer


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture(autouse=True)
def clear_cache():
    """Throttle counters live in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def customer_client(world):
    """`world` (tests/conftest.py): a merchant, store, program with tiers and a Coffee reward, a customer and card."""
    return client_for(world.customer.user)


@pytest.fixture
def other_customer(db):
    return make_customer()


@pytest.fixture
def other_customer_client(other_customer):
    return client_for(other_customer.user)
