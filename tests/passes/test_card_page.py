"""The card page behind a short unguessable URL, without a browser."""
import io
import zipfile

import pytest
from django.core.management import call_command

from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.models import Card
from wallet.services import leave_program
from wallet.services.card_page import card_page_url

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return url[url.index("/c/"):]


def test_card_page_url_is_random_stable_and_not_the_card_number(settings):
    world = build_world()
    url = card_page_url(world.card)
    assert url.startswith(f"{settings.TESSERA_PUBLIC_URL}/c/") and world.card.number not in url
    assert card_page_url(Card.objects.get(pk=world.card.pk)) == url
    assert len(Card.objects.get(pk=world.card.pk).page_slug) >= 16


def test_card_page_shows_balance_and_is_never_cached(client):
    world = build_world()
    buy(world.card, 4200)
    page = client.get(path_of(card_page_url(world.card)))
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert "42" in page.text and world.merchant.name in page.text and 'id="qr"' in page.text
    assert page["Referrer-Policy"] == "no-referrer"
    status = client.get(path_of(card_page_url(world.card)) + "status.json").json()
    assert status["balance"] == 42 and 1 <= status["seconds_left"] <= world.program.token_period_seconds
    qr = client.get(path_of(card_page_url(world.card)) + "qr.svg")
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml" and qr["Cache-Control"] == "no-store"


def test_unknown_slug_is_404_and_closed_card_shows_no_qr(client):
    assert client.get("/c/not-a-real-slug/").status_code == 404
    world = build_world()
    url = path_of(card_page_url(world.card))
    leave_program(world.card)
    page = client.get(url)
    assert "This card is closed." in page.text and 'id="qr"' not in page.text
    assert client.get(url + "qr.svg").status_code == 404


def test_google_button_without_configuration_says_so(client, settings):
    settings.GOOGLE_WALLET = {**settings.GOOGLE_WALLET, "SERVICE_ACCOUNT_FILE": "/nonexistent/account.json"}
    world = build_world()
    response = client.get(path_of(card_page_url(world.card)) + "google/")
    assert response.status_code == 503


def test_add_to_apple_wallet_downloads_a_signed_pass(client, settings, tmp_path):
    settings.APPLE_WALLET = {
        **settings.APPLE_WALLET,
        "CERTIFICATE_PATH": str(tmp_path / "pass-certificate.pem"),
        "KEY_PATH": str(tmp_path / "pass-key.pem"),
        "WWDR_CERTIFICATE_PATH": str(tmp_path / "wwdr.pem"),
    }
    world = build_world()
    url = path_of(card_page_url(world.card)) + "pass.pkpass"
    assert client.get(url).status_code == 503  # no certificates yet: says so instead of failing
    call_command("make_dev_pass_certificates", stdout=io.StringIO())
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/vnd.apple.pkpass"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert {"pass.json", "manifest.json", "signature", "icon.png"} <= set(names)
