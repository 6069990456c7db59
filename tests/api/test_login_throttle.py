"""Guessing passwords through the API is slow however it is done: logins, registrations and receipt
claims are counted atomically, so attempts sent all at once get no more through than attempts sent one
by one; the limit is per client address and, for logging in, per account tried from any address; it
lifts when the window ends and Retry-After says when that is."""
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from core import throttling
from tests.api.conftest import client_for
from tests.concurrency import run_together
from tests.factories import build_world, make_customer
from tests.services import use_redis_cache
from wallet.services import PurchaseRequest, record_unmatched_purchase

pytestmark = pytest.mark.django_db

User = get_user_model()
TOKEN, REGISTER = "/api/v1/auth/token/", "/api/v1/auth/register/"
PASSWORD, GUESS = "correct-horse-battery-9", "not-the-password"
LOGIN_LIMIT, REGISTER_LIMIT, CLAIM_LIMIT, ACCOUNT_LIMIT = 10, 5, 10, 20


@pytest.fixture(autouse=True)
def rates(settings):
    """The shipped rates, pinned so a THROTTLE_* variable in the environment cannot change the counts."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "login": f"{LOGIN_LIMIT}/minute", "register": f"{REGISTER_LIMIT}/minute",
            "claim": f"{CLAIM_LIMIT}/hour", "login_account": f"{ACCOUNT_LIMIT}/hour",
        },
    }


@pytest.fixture
def clock(monkeypatch):
    """The clock the throttle tells Retry-After by, moved by hand: `clock.now += 15`. (Windows end
    when their cache entry expires, in real time.)"""

    class Clock:
        now = 1_800_000_000.0

    monkeypatch.setattr(throttling, "clock", lambda: Clock.now)
    return Clock


@pytest.fixture(params=["locmem", "redis"])
def any_cache(request, settings):
    if request.param == "redis":
        yield from use_redis_cache(settings)
    else:
        yield


def make_account(email, phone=""):
    customer = make_customer()
    user = customer.user
    user.email, user.phone = email, phone
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def ada(db):
    return make_account("ada@example.com", "+14155550123")


def log_in(login, password=GUESS, address="127.0.0.1"):
    return APIClient().post(TOKEN, {"login": login, "password": password}, format="json",
                            REMOTE_ADDR=address)


def statuses(responses):
    return sorted(response.status_code for response in responses)


def assert_throttled(response, *, at_most):
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= at_most


# --- all at once (PostgreSQL: one database connection per thread, like one per worker) -------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_wrong_passwords_sent_at_once_get_exactly_the_limit_checked(ada, redis_cache):
    answers = run_together(20, lambda index: log_in("ada@example.com", f"guess-{index}"))

    assert statuses(answers) == [401] * LOGIN_LIMIT + [429] * (20 - LOGIN_LIMIT)
    for answer in answers:
        if answer.status_code == 429:
            assert_throttled(answer, at_most=60)
    assert log_in("ada@example.com", PASSWORD).status_code == 429  # even the right password, now
    ada.refresh_from_db()
    assert ada.last_login is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_registrations_sent_at_once_create_exactly_the_limit(redis_cache):
    answers = run_together(20, lambda index: APIClient().post(
        REGISTER, {"email": f"burst{index}@example.com", "password": PASSWORD}, format="json"))

    assert statuses(answers) == [201] * REGISTER_LIMIT + [429] * (20 - REGISTER_LIMIT)
    assert User.objects.filter(email__startswith="burst").count() == REGISTER_LIMIT


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_thirty_guesses_at_one_account_from_thirty_addresses_at_once_get_exactly_the_account_limit(ada, redis_cache):
    spellings = ["ada@example.com", "ADA@Example.com", " ada@example.com "]

    answers = run_together(30, lambda index: log_in(spellings[index % 3], address=f"10.0.0.{index + 1}"))

    assert statuses(answers) == [401] * ACCOUNT_LIMIT + [429] * (30 - ACCOUNT_LIMIT)
    assert log_in("ada@example.com", PASSWORD, address="10.9.9.9").status_code == 429


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_receipt_guesses_sent_at_once_get_exactly_the_claim_limit(redis_cache):
    world = build_world()
    record_unmatched_purchase(world.merchant, PurchaseRequest(external_id="pos-77", amount=1250, currency="EUR"),
                              receipt_code="#1042", idempotency_key="k", source="webhook")
    url = f"/api/v1/cards/{world.card.pk}/claims/"

    answers = run_together(20, lambda index: client_for(world.customer.user).post(
        url, {"receipt_code": f"{index:04d}", "amount": 1250}, format="json", HTTP_IDEMPOTENCY_KEY=f"guess-{index}"))

    assert statuses(answers) == [404] * CLAIM_LIMIT + [429] * (20 - CLAIM_LIMIT)


# --- one after another ---------------------------------------------------------------------------


def test_after_the_limit_even_the_right_password_waits_until_the_minute_ends(ada, clock):
    for attempt in range(LOGIN_LIMIT):
        assert log_in("ada@example.com", f"guess-{attempt}").status_code == 401

    clock.now += 15
    refused = log_in("ada@example.com", PASSWORD)
    assert_throttled(refused, at_most=60)
    assert refused["Retry-After"] == "45"  # the minute began with the first attempt
    assert log_in("ada@example.com", PASSWORD, address="192.0.2.7").status_code == 200  # another client


def test_the_limit_lifts_when_the_window_ends(ada, settings, any_cache):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/second"}}
    for _attempt in range(3):
        assert log_in("ada@example.com").status_code == 401
    refused = log_in("ada@example.com", PASSWORD)
    assert_throttled(refused, at_most=1)

    time.sleep(1.05)  # the counter expires with its window
    assert log_in("ada@example.com", PASSWORD).status_code == 200
    assert [log_in("ada@example.com").status_code for _attempt in range(3)] == [401, 401, 429]  # a new window


def test_one_phone_number_guessed_from_many_addresses_is_refused_for_the_hour(ada, clock):
    make_account("grace@example.com")
    spellings = ["+14155550123", "+1 415 555 0123", "+1 (415) 555-0123", " +14155550123"]
    for attempt in range(ACCOUNT_LIMIT):
        assert log_in(spellings[attempt % 4], address=f"10.0.1.{attempt + 1}").status_code == 401

    clock.now += 15
    refused = log_in("+14155550123", PASSWORD, address="10.0.2.1")
    assert_throttled(refused, at_most=3600)
    assert refused["Retry-After"] == str(3600 - 15)
    assert log_in("grace@example.com", PASSWORD, address="10.0.2.1").status_code == 200  # other accounts log in


def test_a_login_body_that_is_not_an_object_is_a_400_not_a_crash(db):
    response = APIClient().post(TOKEN, ["ada@example.com", "guess"], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
