"""What a newcomer gets from `make run`: demo data, the admin, the API docs, served without internet."""
import io
import re

import pytest
from django.core.management import call_command

from engagement.models import Campaign, Offer
from merchants.demo import DEMO_PASSWORD, seed_demo
from merchants.models import Merchant, StaffMember
from pos_integration.services import authenticate_device
from wallet.ledger import cards_out_of_balance
from wallet.models import Card, Customer
from wallet.services.preferences import channel_consents

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_two_merchants_a_customer_with_two_cards_and_a_working_device_key():
    summary = seed_demo()
    assert set(Merchant.objects.values_list("slug", flat=True)) == {"cafe-lumen", "pageturner-books"}
    customer = Customer.objects.get(user__username=summary.customer)
    cards = Card.objects.filter(wallet__customer=customer)
    assert cards.count() == 2 and all(card.balance > 0 for card in cards)
    for merchant in Merchant.objects.all():
        assert merchant.stores.exists() and merchant.programs.get().rewards.exists()
        assert merchant.programs.get().tiers.count() == 2
        assert merchant.staff.filter(role=StaffMember.Role.OWNER).exists()
    assert authenticate_device(summary.device_key).store.merchant.slug == "cafe-lumen"
    assert cards_out_of_balance() == []


def test_seed_demo_twice_changes_nothing_but_reissues_the_device_key():
    first = seed_demo()
    counts = (Card.objects.count(), Merchant.objects.count(), Customer.objects.count())
    balances = list(Card.objects.order_by("pk").values_list("balance", flat=True))
    second = seed_demo()
    assert (Card.objects.count(), Merchant.objects.count(), Customer.objects.count()) == counts
    assert list(Card.objects.order_by("pk").values_list("balance", flat=True)) == balances
    assert authenticate_device(first.device_key) is None
    assert authenticate_device(second.device_key) is not None


def test_the_engagement_demo_gives_the_cafe_offers_a_campaign_to_schedule_and_a_customer_who_opted_in(capsys):
    summary = seed_demo()
    call_command("seed_engagement_demo")
    call_command("seed_engagement_demo")  # twice: nothing more
    assert "Engagement demo ready" in capsys.readouterr().out
    cafe = Merchant.objects.get(slug="cafe-lumen")
    assert Offer.objects.count() == 3 and Offer.objects.filter(merchant=cafe, is_welcome=True).count() == 1
    campaign = Campaign.objects.get(merchant=cafe)
    assert campaign.status == Campaign.Status.DRAFT and campaign.audience.near_store.merchant == cafe
    customer = Customer.objects.get(user__username=summary.customer)
    assert channel_consents(customer, cafe) == {"email": True, "wallet_pass": True, "push": False, "sms": False}


def test_seed_demo_command_prints_the_credentials_a_newcomer_needs(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "cafe-owner / tessera-demo" in out and "books-owner / tessera-demo" in out
    assert re.search(r"tsk_[0-9a-f]{12}_\S+", out)


def test_demo_owner_logs_in_and_sees_only_their_merchant_in_the_admin(client):
    seed_demo()
    assert client.login(username="cafe-owner", password=DEMO_PASSWORD)
    home = client.get("/admin/")
    assert home.status_code == 200 and "Ledger entries" in home.text
    cards = client.get("/admin/wallet/card/")
    assert cards.status_code == 200
    cafe_card = Card.objects.get(merchant__slug="cafe-lumen")
    book_card = Card.objects.get(merchant__slug="pageturner-books")
    assert cafe_card.number in cards.text and book_card.number not in cards.text
    assert "Pageturner" not in client.get("/admin/merchants/merchant/").text
    assert client.get(f"/admin/wallet/card/{book_card.pk}/change/").status_code == 302  # "doesn't exist" redirect
    assert client.get("/admin/core/user/").status_code == 403


def test_admin_login_through_the_form(client):
    seed_demo()
    page = client.get("/admin/login/")
    assert page.status_code == 200
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "books-owner", "password": DEMO_PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_ledger_entries_have_no_edit_or_delete_in_the_admin(admin_client):
    seed_demo()
    entry = Card.objects.first().entries.first()
    page = admin_client.get(f"/admin/wallet/ledgerentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.text
    assert admin_client.post(f"/admin/wallet/ledgerentry/{entry.pk}/delete/").status_code == 403
    assert Card.objects.first().entries.filter(pk=entry.pk).exists()


def test_api_docs_and_schema_are_served_from_local_static_files(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"openapi:" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    scripts = re.findall(r'src="([^"]+)"', docs.text)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
    assert "cdn" not in docs.text.lower()
    bundle = next(src for src in scripts if "swagger-ui-bundle" in src)
    assert client.get(bundle).status_code == 200


def test_health_and_api_errors_use_the_json_error_shape(client):
    assert client.get("/api/health/").json()["status"] == "ok"
    missing = client.get("/api/no-such-endpoint/")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_openapi_schema_validates_with_no_warnings():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    for path in ("/api/v1/cards/", "/api/v1/auth/token/", "/api/v1/stores/nearby/", "/api/v1/preferences/"):
        assert f"{path}:" in schema
    assert "bearerAuth" in schema or "jwtAuth" in schema
