"""The cashier's web till in a real browser: sign in, find a card, earn, redeem, scan with a camera.

Drives Debian's chromium through chromedriver (selenium) at a phone's size. Without chromium the
tests skip with the reason; under REQUIRE_SERVICES=1 (CI) they fail instead. The camera tests feed
chromium's fake camera a Y4M video of a code, so the bundled decoder (not the browser's own
BarcodeDetector, which Linux chromium lacks and which these tests remove anyway) reads a real frame.
"""
import io

import barcode
import pytest
import qrcode
from barcode.writer import ImageWriter
from django.contrib.auth import get_user_model
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from merchants.services import grant_staff_access
from pos_integration.cashiers import set_pin
from pos_integration.models import CounterAction
from pos_integration.services import register_device, revoke_device
from tests.browser import start_chromium
from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.models import Card, IdempotencyRecord, Purchase, Redemption
from wallet.passes.tokens import issue_token

PIN = "2468"
WAIT = 15

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def open_browser():
    """open_browser(camera_video=None) -> a headless chromium 400x900 (a phone), quit afterwards."""
    drivers = []

    def start(camera_video=None):
        flags = ()
        if camera_video:
            flags = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     f"--use-file-for-fake-video-capture={camera_video}")
        driver = start_chromium(size="400,900", flags=flags, browser_log=True)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()


@pytest.fixture
def till(live_server):
    """A merchant with a registered web till and a cashier, Sam, whose PIN is 2468."""
    world = build_world()
    user = world.card.wallet.customer.user
    user.first_name = "Ada"
    user.save(update_fields=["first_name"])
    cashier_user = get_user_model().objects.create_user(username="sam-at-the-till", first_name="Sam")
    staff = grant_staff_access(world.merchant, cashier_user, "cashier")
    set_pin(staff, PIN)
    issued = register_device(world.store, "Web till")
    return world, issued, staff, live_server.url + "/till/"


def wait_for(driver, condition, what):
    """Wait, and on a timeout say what the page was showing (its error lines), not just "timeout"."""
    try:
        return WebDriverWait(driver, WAIT).until(condition)
    except TimeoutException:
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('.error, [role=status]'))"
            ".filter(e => e.offsetParent && e.textContent.trim()).map(e => e.id + ': ' + e.textContent.trim())")
        raise AssertionError(f"timed out waiting for {what}; the page shows {shown}") from None


def visible(driver, element_id):
    return wait_for(driver, EC.visibility_of_element_located((By.ID, element_id)), f"#{element_id}")


def text_in(driver, element_id, text):
    wait_for(driver, EC.text_to_be_present_in_element((By.ID, element_id), text), f"{text!r} in #{element_id}")
    return driver.find_element(By.ID, element_id).text


def connect(driver, url, key, *, remember=False):
    driver.get(url)
    visible(driver, "device-key").send_keys(key)
    if remember:
        driver.find_element(By.ID, "remember").click()
    driver.find_element(By.CSS_SELECTOR, "#setup-form button[type=submit]").click()
    visible(driver, "signin")


def sign_in(driver, pin=PIN, cashier="Sam"):
    Select(visible(driver, "cashier")).select_by_visible_text(cashier)
    field = driver.find_element(By.ID, "pin")
    field.clear()
    field.send_keys(pin)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()


def find_card(driver, code):
    visible(driver, "code").send_keys(code)
    driver.find_element(By.ID, "find-button").click()
    return visible(driver, "customer")


def earn(driver, amount):
    field = visible(driver, "amount")
    field.clear()
    field.send_keys(amount)
    driver.find_element(By.ID, "earn").click()


def severe_console_messages(driver) -> list[str]:
    """CSP violations and script errors land here: the page must produce none."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_cashier_signs_in_types_a_card_number_earns_and_sees_the_new_balance(open_browser, till):
    world, issued, staff, url = till
    driver = open_browser()
    connect(driver, url, issued.key)
    assert world.merchant.name in driver.find_element(By.ID, "place").text
    sign_in(driver)
    visible(driver, "counter")
    assert driver.find_element(By.ID, "cashier-name").text == "Sam"

    find_card(driver, world.card.number)
    assert driver.find_element(By.ID, "customer-name").text == "Ada"
    assert driver.find_element(By.ID, "balance").text == "0"
    earn(driver, "12.50")
    result = text_in(driver, "result", "New balance")

    card = Card.objects.get(pk=world.card.pk)
    purchase = Purchase.objects.get(card=card)
    assert (purchase.amount, purchase.currency) == (1250, "EUR")  # typed in euros, sent exactly in cents
    assert card.balance == purchase.points_earned == 12  # 1 point per euro, floor, Silver x1
    assert driver.find_element(By.ID, "balance").text == str(card.balance)
    assert f"+12 points for 12.50 EUR. New balance: {card.balance} points." == result
    assert CounterAction.objects.get(purchase=purchase).cashier_id == staff.pk  # the PIN went with the sale

    # The key stays in this tab only (not remembered), and never in the address.
    assert driver.execute_script("return sessionStorage.getItem('tessera.till.deviceKey')") == issued.key
    assert driver.execute_script("return localStorage.getItem('tessera.till.deviceKey')") is None
    assert issued.key not in driver.current_url
    # A phone's width: nothing sticks out sideways.
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert severe_console_messages(driver) == []

    driver.find_element(By.ID, "next").click()
    assert not driver.find_element(By.ID, "customer").is_displayed()
    driver.find_element(By.ID, "sign-out").click()
    visible(driver, "signin")


def test_a_retry_after_a_lost_answer_reuses_the_key_and_earns_once(open_browser, till):
    world, issued, _, url = till
    driver = open_browser()
    connect(driver, url, issued.key)
    sign_in(driver)
    find_card(driver, world.card.number)
    # The first purchase reaches the server, but its answer is lost on the way back.
    driver.execute_script("""
        const realFetch = window.fetch; window.sentKeys = []; let lose = true;
        window.fetch = async function (url, init) {
          if (String(url).includes('/purchases/')) window.sentKeys.push(init.headers['Idempotency-Key']);
          const response = await realFetch(url, init);
          if (lose && String(url).includes('/purchases/')) { lose = false; throw new TypeError('network'); }
          return response;
        };
    """)
    earn(driver, "12.50")
    text_in(driver, "action-error", "cannot earn twice")
    assert driver.find_element(By.ID, "earn").text == "Retry earn"
    assert driver.find_element(By.ID, "amount").get_attribute("readonly") is not None  # same sale, same body
    assert Purchase.objects.filter(card=world.card).count() == 1

    driver.find_element(By.ID, "earn").click()
    text_in(driver, "result", "New balance: 12 points")
    keys = driver.execute_script("return window.sentKeys")
    assert len(keys) == 2 and keys[0] == keys[1]
    assert Purchase.objects.filter(card=world.card).count() == 1
    assert Card.objects.get(pk=world.card.pk).balance == 12
    assert driver.find_element(By.ID, "earn").text == "Earn points"

    # The next sale is a new one: a new key, and it earns.
    earn(driver, "3")
    text_in(driver, "result", "New balance: 15 points")
    keys = driver.execute_script("return window.sentKeys")
    assert len(keys) == 3 and keys[2] != keys[0]
    assert IdempotencyRecord.objects.filter(key__endswith=keys[0]).count() == 1


def test_a_wrong_pin_says_how_many_attempts_are_left_and_then_that_the_cashier_is_locked(open_browser, till):
    _, issued, staff, url = till
    driver = open_browser()
    connect(driver, url, issued.key)
    sign_in(driver, pin="1357")
    assert "Wrong PIN. 4 attempts left" in text_in(driver, "signin-error", "Wrong PIN")
    assert not driver.find_element(By.ID, "counter").is_displayed()
    assert driver.find_element(By.ID, "pin").get_attribute("value") == ""
    assert driver.find_element(By.ID, "pin").get_attribute("inputmode") == "numeric"
    for left in ("3 attempts left", "2 attempts left", "1 attempt left"):  # each answer awaited before the next
        sign_in(driver, pin="1357")
        text_in(driver, "signin-error", left)
    sign_in(driver, pin="1357")
    text_in(driver, "signin-error", "locked")
    sign_in(driver)  # even the right PIN, while locked
    text_in(driver, "signin-error", "locked")
    staff.refresh_from_db()
    assert staff.pin_locked_until is not None


def test_amounts_are_parsed_exactly_in_the_currencys_decimals(open_browser, till):
    _, issued, _, url = till
    driver = open_browser()
    connect(driver, url, issued.key)
    parse = "return window.TesseraTill.parseAmount(arguments[0], arguments[1])"
    cases = {("12.50", 2): 1250, ("12,5", 2): 1250, ("0.29", 2): 29, ("1.15", 2): 115, ("4.35", 2): 435,
             ("7", 2): 700, ("7.", 2): 700, (".5", 2): 50, ("1 250", 0): 1250, ("1.234", 3): 1234,
             ("10000000.00", 2): 1_000_000_000}
    for (typed, exponent), minor in cases.items():
        assert driver.execute_script(parse, typed, exponent) == {"minor": minor}, typed
    for typed, exponent in [("12.505", 2), ("12.5", 0), ("0", 2), ("0.00", 2), ("", 2), ("1,234.50", 2), ("-3", 2),
                            ("1e3", 2), ("abc", 2), ("10000000.01", 2)]:
        assert "error" in driver.execute_script(parse, typed, exponent), typed
    assert driver.execute_script("return window.TesseraTill.formatMinor(5, 2)") == "0.05"
    uuid = driver.execute_script("return window.TesseraTill.newId()")
    assert len(uuid) == 36 and uuid[14] == "4"


def test_a_typed_card_number_cannot_redeem_and_the_page_says_why(open_browser, till):
    world, issued, _, url = till
    buy(world.card, 15000)
    driver = open_browser()
    connect(driver, url, issued.key)
    sign_in(driver)
    find_card(driver, world.card.number)
    assert "live QR" in driver.find_element(By.ID, "rewards-hint").text
    driver.find_element(By.CSS_SELECTOR, f"#rewards button[data-reward-id='{world.coffee.pk}']").click()
    assert "live QR code" in text_in(driver, "action-error", "live QR")
    assert Card.objects.get(pk=world.card.pk).balance == 150
    assert not Redemption.objects.filter(card=world.card).exists()
    earn(driver, "12.505")
    assert "At most 2 decimals" in text_in(driver, "action-error", "decimals")
    assert Purchase.objects.filter(card=world.card).count() == 1  # only the set-up purchase

    # A number that is no card of ours: said so, the last customer is gone, the typo stays to fix.
    driver.find_element(By.ID, "code").send_keys("12345678")
    driver.find_element(By.ID, "find-button").click()
    assert "No card" in text_in(driver, "find-error", "No card")
    assert not driver.find_element(By.ID, "customer").is_displayed()
    assert driver.find_element(By.ID, "code").get_attribute("value") == "12345678"


def test_a_remembered_key_survives_a_reload_and_a_revoked_one_is_forgotten(open_browser, till):
    _, issued, _, url = till
    driver = open_browser()
    connect(driver, url, issued.key, remember=True)
    driver.get(url)
    visible(driver, "signin")  # no key to paste again
    assert driver.execute_script("return localStorage.getItem('tessera.till.deviceKey')") == issued.key
    revoke_device(issued.device)
    driver.get(url)
    assert "revoked" in text_in(driver, "setup-error", "revoked")
    assert driver.execute_script("return localStorage.getItem('tessera.till.deviceKey')") is None


# ---- The camera --------------------------------------------------------------------------------------

def y4m_video(image: Image.Image, path) -> str:
    """A still picture as a short Y4M video (4:2:0), what chromium's fake camera plays in a loop."""
    frame = Image.new("RGB", (640, 480), "white")
    image = image.convert("RGB")
    image.thumbnail((600, 440))
    frame.paste(image, ((640 - image.width) // 2, (480 - image.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    chroma = [plane.resize((320, 240)).tobytes() for plane in (cb, cr)]
    with open(path, "wb") as video:
        video.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            video.write(b"FRAME\n" + y.tobytes() + chroma[0] + chroma[1])
    return str(path)


def qr_image(text: str) -> Image.Image:
    return qrcode.make(text, border=4).get_image()


def code128_image(number: str) -> Image.Image:
    out = io.BytesIO()
    barcode.get("code128", number, writer=ImageWriter()).write(out, {"module_width": 0.35, "module_height": 20})
    return Image.open(io.BytesIO(out.getvalue()))


def start_scanning(driver):
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                           {"source": "delete window.BarcodeDetector;"})  # prove the bundled decoder


def test_the_camera_reads_the_passs_live_qr_with_the_bundled_decoder_and_redeems(open_browser, till, tmp_path):
    world, issued, _, url = till
    world.program.token_period_seconds = 300  # the picture is fixed: its token must stay valid meanwhile
    world.program.save(update_fields=["token_period_seconds"])
    buy(world.card, 15000)
    token = issue_token(Card.objects.get(pk=world.card.pk))
    driver = open_browser(y4m_video(qr_image(token), tmp_path / "qr.y4m"))
    start_scanning(driver)
    connect(driver, url, issued.key)
    sign_in(driver)
    visible(driver, "scan").click()
    visible(driver, "customer")
    assert driver.find_element(By.ID, "camera").get_attribute("data-engine") == "bundled"
    assert not driver.find_element(By.ID, "camera").is_displayed()  # the camera stops once it has read
    assert driver.find_element(By.ID, "customer-name").text == "Ada"

    driver.find_element(By.CSS_SELECTOR, f"#rewards button[data-reward-id='{world.coffee.pk}']").click()
    text_in(driver, "result", "Redeemed Coffee for 100 points. New balance: 50 points.")
    assert Card.objects.get(pk=world.card.pk).balance == 50
    assert Redemption.objects.get(card=world.card).reward == world.coffee
    assert severe_console_messages(driver) == []


def test_the_camera_reads_the_cards_code_128_barcode(open_browser, till, tmp_path):
    world, issued, _, url = till
    driver = open_browser(y4m_video(code128_image(world.card.number), tmp_path / "code128.y4m"))
    start_scanning(driver)
    connect(driver, url, issued.key)
    sign_in(driver)
    visible(driver, "scan").click()
    visible(driver, "customer")
    assert driver.find_element(By.ID, "customer-name").text == "Ada"
    earn(driver, "4.99")
    text_in(driver, "result", "New balance: 4 points")
    assert Card.objects.get(pk=world.card.pk).balance == 4
