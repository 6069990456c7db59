"""Headless chromium for browser tests: Debian's chromium through chromedriver (selenium).

Without chromium a test skips with the reason; under REQUIRE_SERVICES=1 (CI, whose .ci/run
installs chromium and chromium-driver) it fails instead, so a green CI run means it really ran.
"""
import shutil

from tests.services import missing_service

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
_QUIET = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync")


def start_chromium(*, size: str, flags=(), browser_log: bool = False):
    if not (CHROMIUM and CHROMEDRIVER):
        missing_service("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*_QUIET, f"--window-size={size}", *flags):
        options.add_argument(flag)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
