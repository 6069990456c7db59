"""Colleagues added by email set their admin password from a one-time link; staff who forget it reset it.
Customers, unknown addresses and former colleagues get no mail, and nobody can fill an inbox with them."""
import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from merchants.models import Merchant, StaffMember
from merchants.password_reset import staff_password_tokens
from merchants.services import deactivate_staff, grant_staff_access

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Lantern-quiet-47-harbour"
LINK = re.compile(r"https://tessera\.example(/admin/password-reset/[^/\s]+/[^/\s]+/)")
PER_ADDRESS, PER_EMAIL = 4, 2


@pytest.fixture(autouse=True)
def reset_settings(settings):
    """Pinned rates (a THROTTLE_* variable cannot change the counts), a public URL, no counters left over."""
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "password_reset": f"{PER_ADDRESS}/hour", "password_reset_email": f"{PER_EMAIL}/hour"}}
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def merchant():
    return Merchant.objects.create(name="Juniper Bakery", slug="juniper", currency="EUR", time_zone="Europe/Paris")


def _user(username, **extra):
    return get_user_model().objects.create_user(username, email=f"{username}@example.com", password="pw-123456",
                                                **extra)


@pytest.fixture
def owner(merchant):
    user = _user("juniper-owner")
    grant_staff_access(merchant, user, "owner")
    return user


def _add_colleague(client, owner, merchant, capture, email, role="manager"):
    client.force_login(owner)
    with capture(execute=True):
        response = client.post(reverse("admin:merchants_staffmember_add"), {
            "merchant": merchant.pk, "email": email, "first_name": "Nia", "role": role})
    assert response.status_code == 302
    client.logout()


def _ask_for_reset(email, address="198.51.100.7"):
    return Client(REMOTE_ADDR=address).post(reverse("admin_password_reset"), {"email": email})


def _set_password(link: str, password: str) -> tuple[Client, object]:
    """Follow a mailed link the way a browser does and submit the new password twice."""
    browser = Client()
    form_page = browser.get(link)
    if form_page.status_code != 302:  # an invalid link answers with its explanation at once
        return browser, form_page
    return browser, browser.post(form_page["Location"], {"new_password1": password, "new_password2": password})


def _link(message) -> str:
    return LINK.search(message.body).group(1)


def test_a_colleague_added_by_email_sets_a_password_from_the_mail_and_sees_their_merchant(
        client, owner, merchant, django_capture_on_commit_callbacks, caplog):
    _add_colleague(client, owner, merchant, django_capture_on_commit_callbacks, "Nia.Ortiz@example.com")

    assert [message.to for message in mail.outbox] == [["Nia.Ortiz@example.com"]]
    invitation = mail.outbox[0]
    assert "Juniper Bakery" in invitation.subject and "Juniper Bakery added you" in invitation.body
    assert "Your username: nia.ortiz@example.com" in invitation.body
    link = _link(invitation)

    browser, done = _set_password(link, NEW_PASSWORD)
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert browser.get(done["Location"]).context["login_url"] == reverse("admin:login")

    signed_in = Client()
    login = signed_in.post(reverse("admin:login"), {"username": "nia.ortiz@example.com", "password": NEW_PASSWORD,
                                                   "next": reverse("admin:index")})
    assert login.status_code == 302 and login["Location"] == reverse("admin:index")
    assert "Juniper Bakery" in signed_in.get(reverse("admin:merchants_merchant_changelist")).content.decode()

    assert _set_password(link, "Another-fresh-pass-93")[1].context["validlink"] is False  # once only
    assert get_user_model().objects.get(username="nia.ortiz@example.com").check_password(NEW_PASSWORD)
    assert not [message for message in mail.outbox if NEW_PASSWORD in message.body + message.subject]
    assert NEW_PASSWORD not in caplog.text


def test_adding_an_existing_user_or_a_cashier_by_email_sends_no_invitation(
        client, owner, merchant, django_capture_on_commit_callbacks):
    _user("already-here")
    _add_colleague(client, owner, merchant, django_capture_on_commit_callbacks, "already-here@example.com")
    _add_colleague(client, owner, merchant, django_capture_on_commit_callbacks, "till@example.com", role="cashier")
    assert StaffMember.objects.filter(merchant=merchant).count() == 3
    assert mail.outbox == []  # the cashier signs in at the counter with a PIN, never to the admin


def test_the_reset_form_answers_alike_but_mails_only_people_the_admin_lets_in(owner, merchant):
    login_page = Client().get(reverse("admin:login")).content.decode()
    assert f'href="{reverse("admin_password_reset")}"' in login_page
    assert '<a href="/admin/">Tessera</a>' in Client().get(reverse("admin_password_reset")).content.decode()

    customer = _user("wallet-customer")
    former = _user("former-manager")
    deactivate_staff(grant_staff_access(merchant, former, "manager"))
    answers = [_ask_for_reset(email) for email in (
        "nobody@example.com", customer.email, former.email, "JUNIPER-OWNER@example.com")]

    assert {(answer.status_code, answer["Location"]) for answer in answers} == {
        (302, reverse("password_reset_done"))}
    assert [message.to for message in mail.outbox] == [[owner.email]]
    assert "Tessera" in mail.outbox[0].subject


def test_a_reset_validates_the_new_password_and_its_link_works_once(owner):
    _ask_for_reset(owner.email)
    link = _link(mail.outbox[0])
    browser = Client()
    form_url = browser.get(link)["Location"]

    weak = browser.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 200 and weak.context["form"].errors["new_password2"]
    assert browser.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code == 302

    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD) and not owner.check_password("pw-123456")
    assert _set_password(link, "Another-fresh-pass-93")[1].context["validlink"] is False


def test_no_link_opens_the_form_for_a_customer_or_from_another_token_generator(owner):
    customer = _user("wallet-customer")
    for user, generator in ((customer, staff_password_tokens), (owner, default_token_generator)):
        link = reverse("password_reset_confirm", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                                       generator.make_token(user)])
        answer = _set_password(link, NEW_PASSWORD)[1]
        assert answer.status_code == 200 and answer.context["validlink"] is False
        user.refresh_from_db()
        assert not user.check_password(NEW_PASSWORD)


def test_the_reset_form_is_limited_per_email_from_any_address_and_per_address(owner):
    sent = [_ask_for_reset(owner.email, address=f"203.0.113.{n}").status_code for n in range(PER_EMAIL + 1)]
    assert sent == [302] * PER_EMAIL + [429]
    assert len(mail.outbox) == PER_EMAIL

    from_one_address = [_ask_for_reset(f"someone{n}@example.com", address="192.0.2.1")
                        for n in range(PER_ADDRESS + 1)]
    assert [answer.status_code for answer in from_one_address] == [302] * PER_ADDRESS + [429]
    refused = from_one_address[-1]
    assert int(refused["Retry-After"]) > 0 and "Too many password reset requests" in refused.content.decode()
    assert len(mail.outbox) == PER_EMAIL
