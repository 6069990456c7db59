"""Customer accounts through the API: register, log in, tokens, logout, password change, profile."""
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from tests.api.conftest import client_for
from tests.factories import make_customer
from wallet.models import Customer, DomainEvent

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "correct-horse-battery-9"
REGISTER, TOKEN, REFRESH = "/api/v1/auth/register/", "/api/v1/auth/token/", "/api/v1/auth/token/refresh/"
LOGOUT, PASSWORD_URL, ME = "/api/v1/auth/logout/", "/api/v1/auth/password/", "/api/v1/me/"


def register(client, **fields):
    return client.post(REGISTER, {"password": PASSWORD, **fields}, format="json")


def log_in(client, login, password=PASSWORD):
    return client.post(TOKEN, {"login": login, "password": password}, format="json")


def bearer(access):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def assert_error(response, status, code=None, field=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["message"]
    if code:
        assert error["code"] == code
    if field:
        assert field in error["fields"], error
    return error


@pytest.fixture
def account(db, anon_client):
    """A registered customer with a known email, phone and password."""
    response = register(anon_client, email="ada@example.com", phone="+14155550123", first_name="Ada")
    assert response.status_code == 201
    return Customer.objects.get(user__email="ada@example.com")


# --- registering ----------------------------------------------------------------------------------


def test_register_by_email_then_log_in_with_any_letter_case_and_read_the_profile(anon_client):
    response = register(
        anon_client, email="Grace.Hopper@Example.COM", first_name="Grace", time_zone="America/New_York", locale="en-US"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["profile"]["email"] == "Grace.Hopper@example.com"
    assert body["profile"]["time_zone"] == "America/New_York" and body["profile"]["locale"] == "en-US"
    assert bearer(body["tokens"]["access"]).get(ME).json()["first_name"] == "Grace"

    login = log_in(anon_client, "grace.hopper@EXAMPLE.com")
    assert login.status_code == 200 and set(login.json()) == {"access", "refresh"}
    profile = bearer(login.json()["access"]).get(ME)
    assert profile.status_code == 200
    assert profile.json()["email"] == "Grace.Hopper@example.com"
    user = User.objects.get(email="Grace.Hopper@example.com")
    assert user.username.startswith("c_") and user.check_password(PASSWORD) and user.customer.wallet


def test_register_by_phone_alone_defaults_to_utc_and_logs_in_by_phone(anon_client):
    response = register(anon_client, phone="+1 (415) 555-0199")
    assert response.status_code == 201
    profile = response.json()["profile"]
    assert profile["phone"] == "+14155550199" and profile["email"] == "" and profile["time_zone"] == "UTC"

    login = log_in(anon_client, "+14155550199")
    assert login.status_code == 200
    assert bearer(login.json()["access"]).get(ME).json()["phone"] == "+14155550199"


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"email": "mars@example.com", "time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "4155550123"}, "phone"),
        ({"phone": "+1415CALLME"}, "phone"),
        ({"email": "weak@example.com", "password": "password"}, "password"),
        ({"email": "digits@example.com", "password": "83749261"}, "password"),
        ({"email": "staff@example.com", "is_staff": True}, "is_staff"),
        ({"email": "TAKEN@example.COM"}, "email"),
        ({"phone": "+33612345678"}, "phone"),
        ({"first_name": "Nobody"}, "email"),
        ({"email": "locale@example.com", "locale": "not a locale"}, "locale"),
    ],
    ids=[
        "time-zone", "email", "phone-no-plus", "phone-letters", "common-password", "numeric-password",
        "unknown-field", "duplicate-email-other-case", "duplicate-phone", "no-email-or-phone", "locale",
    ],
)
def test_bad_registration_is_a_400_and_creates_nothing(anon_client, fields, bad_field):
    User.objects.create_user(username="taken", email="Taken@Example.com", phone="+33612345678", password="x")
    counts = (User.objects.count(), Customer.objects.count(), DomainEvent.objects.count())
    assert_error(register(anon_client, **fields), 400, "validation_failed", bad_field)
    assert (User.objects.count(), Customer.objects.count(), DomainEvent.objects.count()) == counts


def test_registering_is_throttled(anon_client):
    for n in range(5):
        assert register(anon_client, email=f"burst{n}@example.com").status_code == 201
    assert_error(register(anon_client, email="burst5@example.com"), 429, "throttled")
    assert not User.objects.filter(email="burst5@example.com").exists()


# --- logging in -----------------------------------------------------------------------------------


def test_wrong_password_and_unknown_account_get_the_same_401(anon_client, account):
    wrong = assert_error(log_in(anon_client, "ada@example.com", "not-the-password"), 401)
    unknown = assert_error(log_in(anon_client, "nobody@example.com"), 401)
    assert wrong == unknown
    assert "WWW-Authenticate" in log_in(anon_client, "ada@example.com", "nope")


def test_inactive_account_and_staff_without_a_wallet_cannot_log_in(anon_client, account):
    User.objects.filter(pk=account.user_id).update(is_active=False)
    assert_error(log_in(anon_client, "ada@example.com"), 401)
    User.objects.create_user(username="owner", email="owner@example.com", password=PASSWORD)
    assert_error(log_in(anon_client, "owner@example.com"), 401)


def test_eleventh_login_attempt_in_a_minute_is_throttled(anon_client, account):
    for _attempt in range(10):
        assert log_in(anon_client, "ada@example.com", "guess").status_code == 401
    response = log_in(anon_client, "ada@example.com")  # even the right password
    assert_error(response, 429, "throttled")
    assert "Retry-After" in response


# --- tokens ---------------------------------------------------------------------------------------


def test_refresh_rotates_and_each_refresh_token_works_once(anon_client, account):
    first = log_in(anon_client, "ada@example.com").json()
    second = anon_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh"] != first["refresh"]
    assert bearer(pair["access"]).get(ME).status_code == 200

    assert_error(anon_client.post(REFRESH, {"refresh": first["refresh"]}, format="json"), 401, "invalid_token")
    assert anon_client.post(REFRESH, {"refresh": pair["refresh"]}, format="json").status_code == 200
    assert_error(anon_client.post(REFRESH, {"refresh": "not.a.token"}, format="json"), 401)
    assert_error(anon_client.post(REFRESH, {"refresh": first["access"]}, format="json"), 401)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refresh_token_sent_by_eight_clients_at_once_is_exchanged_once():
    refresh = str(RefreshToken.for_user(make_customer().user))
    barrier = threading.Barrier(8)

    def exchange(_index):
        try:
            barrier.wait(timeout=30)
            return client_for().post(REFRESH, {"refresh": refresh}, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(exchange, range(8)))
    assert sorted(statuses) == [200] + [401] * 7


def test_logout_blacklists_that_refresh_token_only(anon_client, account):
    phone_session = log_in(anon_client, "ada@example.com").json()
    laptop_session = log_in(anon_client, "+14155550123").json()
    client = bearer(phone_session["access"])
    assert client.post(LOGOUT, {"refresh": phone_session["refresh"]}, format="json").status_code == 204
    assert client.post(LOGOUT, {"refresh": phone_session["refresh"]}, format="json").status_code == 204

    assert_error(anon_client.post(REFRESH, {"refresh": phone_session["refresh"]}, format="json"), 401)
    assert anon_client.post(REFRESH, {"refresh": laptop_session["refresh"]}, format="json").status_code == 200


def test_logout_needs_a_login_and_refuses_someone_elses_token(anon_client, account, other_customer):
    session = log_in(anon_client, "ada@example.com").json()
    assert_error(anon_client.post(LOGOUT, {"refresh": session["refresh"]}, format="json"), 401)
    stranger = client_for(other_customer.user)
    assert_error(stranger.post(LOGOUT, {"refresh": session["refresh"]}, format="json"), 400, field="refresh")
    assert anon_client.post(REFRESH, {"refresh": session["refresh"]}, format="json").status_code == 200


# --- changing the password ------------------------------------------------------------------------


def test_change_password_needs_the_current_one_and_ends_every_session(anon_client, account):
    sessions = [log_in(anon_client, "ada@example.com").json() for _ in range(2)]
    client = bearer(sessions[0]["access"])

    wrong = client.post(PASSWORD_URL, {"current_password": "nope", "new_password": "another-fine-pass"}, format="json")
    assert_error(wrong, 400, "wrong_password", "current_password")
    weak = client.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": "password"}, format="json")
    assert_error(weak, 400, "validation_failed", "new_password")
    account.user.refresh_from_db()
    assert account.user.check_password(PASSWORD)

    new = {"current_password": PASSWORD, "new_password": "another-fine-pass"}
    assert client.post(PASSWORD_URL, new, format="json").status_code == 204
    for session in sessions:
        assert_error(anon_client.post(REFRESH, {"refresh": session["refresh"]}, format="json"), 401)
    assert_error(log_in(anon_client, "ada@example.com"), 401)
    assert log_in(anon_client, "ada@example.com", "another-fine-pass").status_code == 200
    # Access tokens issued before the change stop working at once, not when they expire.
    assert_error(bearer(sessions[1]["access"]).get(ME), 401)


# --- the profile ----------------------------------------------------------------------------------


def test_profile_shows_account_fields_but_no_communication_settings(customer_client, world):
    body = customer_client.get(ME).json()
    assert set(body) == {
        "id", "email", "phone", "first_name", "time_zone", "locale", "home_latitude", "home_longitude",
        "birth_month", "birth_day", "created_at",
    }
    assert body["id"] == world.customer.pk and body["email"] == world.customer.user.email


def test_profile_needs_a_customer_token(anon_client, db):
    assert_error(anon_client.get(ME), 401)
    staff = User.objects.create_user(username="staff", password="x")
    assert_error(client_for(staff).get(ME), 403)


def test_patch_profile_changes_only_what_was_sent(customer_client, world):
    response = customer_client.patch(
        ME,
        {"first_name": "Marie", "time_zone": "Europe/Paris", "home_latitude": 48.85661234, "home_longitude": "2.3522"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["home_latitude"] == pytest.approx(48.856612)
    customer = Customer.objects.select_related("user").get(pk=world.customer.pk)
    assert customer.user.first_name == "Marie" and customer.time_zone == "Europe/Paris"
    assert customer.home_latitude == Decimal("48.856612") and customer.home_longitude == Decimal("2.3522")
    assert customer.locale == "en" and customer.user.email == world.customer.user.email
    event = DomainEvent.objects.get(event_type="wallet.customer.updated")
    assert event.payload["changed"] == ["first_name", "home_latitude", "home_longitude", "time_zone"]
    assert "Marie" not in str(event.payload)


def test_a_birthday_is_a_month_and_a_day_and_can_be_removed(customer_client, world):
    response = customer_client.patch(ME, {"birth_month": 2, "birth_day": 29}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["birth_month"], response.json()["birth_day"]) == (2, 29)
    customer = Customer.objects.get(pk=world.customer.pk)
    assert (customer.birth_month, customer.birth_day) == (2, 29)
    cleared = customer_client.patch(ME, {"birth_month": None, "birth_day": None}, format="json").json()
    assert (cleared["birth_month"], cleared["birth_day"]) == (None, None)


def test_new_email_becomes_the_login(anon_client, account):
    client = bearer(log_in(anon_client, "ada@example.com").json()["access"])
    assert client.patch(ME, {"email": "ada.byron@example.com"}, format="json").status_code == 200
    assert_error(log_in(anon_client, "ada@example.com"), 401)
    assert log_in(anon_client, "ada.byron@example.com").status_code == 200


@pytest.mark.parametrize(
    ("changes", "bad_field"),
    [
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"home_latitude": 90.5, "home_longitude": 2}, "home_latitude"),
        ({"home_latitude": 48, "home_longitude": -180.01}, "home_longitude"),
        ({"home_latitude": 48.85}, "home_longitude"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
        ({"id": 1}, "id"),
        ({"communication_paused": True}, "communication_paused"),
        ({"email": "Someone.Else@example.com"}, "email"),
        ({"phone": "+15550009999"}, "phone"),
        ({"email": ""}, "email"),
        ({"phone": "555"}, "phone"),
        ({"birth_month": 2, "birth_day": 30}, "birth_day"),
        ({"birth_month": 13, "birth_day": 1}, "birth_month"),
        ({"birth_month": 4}, "birth_day"),
    ],
    ids=[
        "time-zone", "latitude-range", "longitude-range", "latitude-alone", "unknown-field", "read-only-field",
        "field-owned-elsewhere", "email-taken", "phone-taken", "no-login-left", "malformed-phone",
        "no-30-february", "month-13", "month-without-day",
    ],
)
def test_bad_profile_patch_is_a_400_and_writes_nothing(customer_client, world, changes, bad_field):
    User.objects.create_user(username="else", email="someone.else@example.com", phone="+15550009999", password="x")
    user = world.customer.user
    User.objects.filter(pk=user.pk).update(phone="")  # email is then the only login

    def snapshot():
        customer = Customer.objects.select_related("user").get(pk=world.customer.pk)
        return (
            customer.user.email, customer.user.phone, customer.user.first_name, customer.time_zone, customer.locale,
            customer.home_latitude, customer.home_longitude, customer.communication_paused,
            customer.birth_month, customer.birth_day, DomainEvent.objects.count(),
        )

    before = snapshot()
    response = customer_client.patch(ME, {"first_name": "Changed", **changes}, format="json")
    assert_error(response, 400, field=bad_field)
    assert snapshot() == before
