"""The reconciliation page in a real browser, as a merchant owner: it renders under its strict CSP with
no console error, its SVG chart is on screen with bars, and the screenshot is kept as a test artifact.

Drives Debian's chromium through chromedriver (selenium). Without chromium the test skips with the
reason; under REQUIRE_SERVICES=1 (CI) it fails instead.
"""
import datetime as dt
import os
import zoneinfo
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from selenium.webdriver.common.by import By

from merchants.models import Reward, StaffMember
from tests.browser import start_chromium
from tests.factories import make_customer, make_merchant, make_program, make_store
from wallet.models import Purchase
from wallet.services import PurchaseRequest, enroll, record_purchase, redeem_reward, refund_purchase

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.django_db(transaction=True)


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("TESSERA_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser():
    driver = start_chromium(size="1280,1600", browser_log=True)
    yield driver
    driver.quit()


def seed_a_week(today: dt.date):
    """An owner's merchant with a week of sales and redemptions at two stores, ending today."""
    merchant = make_merchant(name="Café Lumen")
    zone = zoneinfo.ZoneInfo(merchant.time_zone)
    shop, market = make_store(merchant), make_store(merchant)
    program = make_program(merchant, welcome_bonus=50)
    croissant = Reward.objects.create(program=program, name="Croissant", points_cost=40)
    start = today - dt.timedelta(days=6)
    cards = [enroll(make_customer(), program, occurred_at=dt.datetime.combine(start, dt.time(8), zone)).card
             for _ in range(3)]
    for offset in range(7):
        day = start + dt.timedelta(days=offset)
        for n, card in enumerate(cards):
            when = dt.datetime.combine(day, dt.time(9 + n), zone)
            record_purchase(card, PurchaseRequest(
                external_id=f"s-{offset}-{n}", amount=1500 + 700 * n + 300 * offset, currency="EUR",
                store_id=(shop if n % 2 else market).pk, occurred_at=when,
            ), idempotency_key=f"k-{offset}-{n}")
        if offset % 2:
            redeem_reward(cards[offset % 3], croissant, idempotency_key=f"r-{offset}", store_id=shop.pk,
                          occurred_at=dt.datetime.combine(day, dt.time(15), zone))
    refund_purchase(Purchase.objects.get(external_id="s-3-1"), amount=None, idempotency_key="refund",
                    occurred_at=dt.datetime.combine(start + dt.timedelta(days=4), dt.time(16), zone))
    Purchase.objects.create(merchant=merchant, store=market, external_id="walk-in", amount=990, currency="EUR",
                            receipt_code="R-77", occurred_at=dt.datetime.combine(today, dt.time(7), zone))
    owner = get_user_model().objects.create_user(username="lumen-owner", is_staff=True)
    StaffMember.objects.create(merchant=merchant, user=owner, role="owner")
    return merchant, owner


def log_in(driver, live_server, user):
    """The browser gets the session cookie of a force-logged-in owner: no password form to drive. Set
    through the DevTools protocol, so no other page is loaded (and logs) before the one under test."""
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    driver.execute_cdp_cmd("Network.setCookie", {
        "name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url, "httpOnly": True,
    })


def test_owner_sees_the_reconciliation_page_with_its_chart_and_no_console_errors(browser, live_server):
    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date()
    merchant, owner = seed_a_week(today)
    log_in(browser, live_server, owner)

    browser.get(f"{live_server.url}/admin/reports/reconciliation/?merchant={merchant.pk}"
                f"&start={today - dt.timedelta(days=13)}&end={today}")

    assert browser.find_element(By.TAG_NAME, "h1").text == "Reconciliation"
    chart = browser.find_element(By.ID, "points-chart")
    assert chart.is_displayed() and chart.size["width"] > 300 and chart.size["height"] > 100
    issued = chart.find_elements(By.CSS_SELECTOR, "rect.bar-issued")
    redeemed = chart.find_elements(By.CSS_SELECTOR, "rect.bar-redeemed")
    assert len(issued) == 7 and len(redeemed) == 3  # a week of sales in a fortnight; three redemption days
    assert all(bar.size["height"] > 0 for bar in issued + redeemed)
    assert "Unmatched purchase" in browser.find_element(By.ID, "reconciliation-discrepancies").text
    assert browser.find_element(By.ID, "csv-link").get_attribute("href").startswith(
        f"{live_server.url}/admin/reports/reconciliation.csv?merchant={merchant.pk}")

    severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], "CSP violations or errors in the console"

    screenshot = artifacts_dir() / "reconciliation.png"
    screenshot.unlink(missing_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == PNG_SIGNATURE and screenshot.stat().st_size > 10_000
