"""The card page in a real browser: the QR on screen decodes to a valid token and changes by itself.

Drives Debian's chromium through chromedriver (selenium). Without chromium the test skips with the
reason; under REQUIRE_SERVICES=1 (CI, whose .ci/run installs chromium) it fails instead.
"""
import io
import time

import pytest
import zxingcpp
from PIL import Image

from tests.browser import start_chromium
from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.passes.tokens import verify_token
from wallet.services.card_page import card_page_url


@pytest.fixture
def browser():
    driver = start_chromium(size="480,1000")
    yield driver
    driver.quit()


def qr_on_screen(driver) -> str | None:
    element = driver.find_element("id", "qr")
    image = Image.open(io.BytesIO(element.screenshot_as_png)).convert("L")
    found = zxingcpp.read_barcodes(image)
    return found[0].text if found else None


@pytest.mark.django_db(transaction=True)
def test_card_page_shows_a_valid_rotating_qr_that_refreshes_itself(browser, live_server, settings):
    settings.TESSERA_PUBLIC_URL = live_server.url
    # One step of drift, as at a real counter: a code decoded at the very end of its period is
    # verified a moment later, in the next one.
    world = build_world(token_period_seconds=5, token_drift_steps=1)
    buy(world.card, 4200)
    browser.get(card_page_url(world.card))
    assert "42" in browser.find_element("id", "balance").text

    deadline = time.monotonic() + 10
    first = None
    while first is None and time.monotonic() < deadline:
        first = qr_on_screen(browser)
        time.sleep(0.3)
    assert first, "no QR could be decoded from the page"
    assert verify_token(first).card == world.card

    deadline = time.monotonic() + 15
    second = first
    while second == first and time.monotonic() < deadline:
        time.sleep(0.5)
        second = qr_on_screen(browser) or first
    assert second != first, "the QR did not change after one period"
    assert verify_token(second).card == world.card
