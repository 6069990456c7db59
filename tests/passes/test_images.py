"""Every QR and Code 128 we serve decodes back to the exact value with a real decoder (zxing-cpp),
at the size the endpoints serve; the hand-written PNG is a valid PNG with 10 px modules and a white
quiet zone; the image cache; and the image endpoints' ownership and caching."""
import io
import re
import struct
import time
import xml.etree.ElementTree as ET
import zlib

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from merchants.models import Reward
from tests.api.conftest import client_for
from tests.factories import make_customer
from tests.wallet.helpers import buy
from wallet.models import Redemption
from wallet.passes import images, tokens
from wallet.services import redeem_reward

try:  # render SVG with a real SVG renderer when one is installed; otherwise rasterise our own paths
    import cairosvg
except ImportError:  # pragma: no cover - depends on the environment
    cairosvg = None

pytestmark = pytest.mark.django_db

SVG_NS = "{http://www.w3.org/2000/svg}"
_RECT = re.compile(r"M(\d+),(\d+)h(\d+)v(\d+)h-(\d+)z")


def decode_png(data: bytes) -> list[tuple[str, str]]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return [(result.format.name, result.text) for result in zxingcpp.read_barcodes(image)]


def svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)  # noqa: S314 - SVG we generated ourselves, not untrusted input
    assert root.tag == f"{SVG_NS}svg"
    return root


def rasterise_svg(data: bytes, scale: int = 6) -> bytes:
    """PNG of an SVG: cairosvg if installed, else draw the path's module rectangles ourselves (our
    SVGs are one path of axis-aligned rectangles in viewBox units)."""
    if cairosvg is not None:  # pragma: no cover
        return cairosvg.svg2png(bytestring=data, scale=scale, background_color="white")
    root = svg_root(data)
    _, _, width, height = (int(float(n)) for n in root.get("viewBox").split())
    image = Image.new("L", (width * scale, height * scale), 255)
    draw = ImageDraw.Draw(image)
    path = root.find(f"{SVG_NS}path").get("d")
    rects = _RECT.findall(path)
    assert "".join(f"M{x},{y}h{w}v{h}h-{w2}z" for x, y, w, h, w2 in rects) == path  # nothing we did not draw
    for x, y, w, h, _ in rects:
        x, y, w, h = int(x), int(y), int(w), int(h)
        draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1], fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


CARD_NUMBERS = ["8519606894279679", "4000000000000002", "0000000000000000"]
COUPON_CODES = ["K7QP-2MXD-9ZRT", "ABCDEFGHJKMNPQRS", "x"]


def realistic_token(n: int) -> str:
    return "A" + "Qb-_" * 25 + str(n)  # the length and alphabet of a pass token (base64url)


@pytest.mark.parametrize("value", [realistic_token(1), *COUPON_CODES])
def test_qr_png_decodes_to_the_exact_value(value):
    png = images.qr_png(value)
    assert decode_png(png) == [("QRCode", value)]
    width, height = Image.open(io.BytesIO(png)).size
    modules = len(images.qr_matrix(value))
    assert width == height == modules * 10 and width >= 8 * modules  # >= 8 px per module, quiet zone included


@pytest.mark.parametrize("value", [realistic_token(2), *COUPON_CODES])
def test_qr_svg_has_module_viewbox_and_decodes(value):
    svg = images.qr_svg(value)
    modules = len(images.qr_matrix(value))
    assert svg_root(svg).get("viewBox") == f"0 0 {modules} {modules}"
    assert decode_png(rasterise_svg(svg)) == [("QRCode", value)]


def test_qr_has_a_four_module_quiet_zone_and_medium_error_correction():
    value = realistic_token(3)
    matrix = images.qr_matrix(value)
    for edge in (matrix[:4], matrix[-4:], [row[:4] for row in matrix], [row[-4:] for row in matrix]):
        assert not any(any(row) for row in edge)
    result = zxingcpp.read_barcodes(Image.open(io.BytesIO(images.qr_png(value))))[0]
    assert result.ec_level == "M"


@pytest.mark.parametrize("value", CARD_NUMBERS + COUPON_CODES)
def test_code128_png_and_svg_decode_to_the_exact_value(value):
    assert decode_png(images.code128_png(value)) == [("Code128", value)]
    svg = images.code128_svg(value)
    root = svg_root(svg)
    width = len(images.code128_modules(value)) + 2 * images.CODE128_QUIET_MODULES
    assert root.get("viewBox") == f"0 0 {width} {images.CODE128_BAR_HEIGHT + images.CODE128_TEXT_HEIGHT}"
    assert root.find(f"{SVG_NS}text").text == value  # typeable by hand
    assert decode_png(rasterise_svg(svg, scale=3)) == [("Code128", value)]


def test_decoder_would_notice_a_wrong_image():
    """The decode assertions can fail: a different value decodes to a different text."""
    assert decode_png(images.code128_png("12345")) != [("Code128", "12346")]
    blank = io.BytesIO()
    Image.new("L", (200, 200), 255).save(blank, format="PNG")
    assert decode_png(blank.getvalue()) == []


# The hand-written PNG -------------------------------------------------------------------------------

# Base64url like a pass token, at 104 characters (card ids from 2**28; smaller ones give 99-103, see
# tokens.py); and well past it.
QR_LENGTHS = {"short": "x", "104 characters": "AQ" + "b-_Q" * 25 + "x9", "200 characters": "Tessera-" * 25}


def test_the_lengths_are_what_their_names_say_and_cover_a_real_token(world):
    assert [len(value) for value in QR_LENGTHS.values()] == [1, 104, 200]
    real = tokens.issue_token(world.card)
    assert len(real) <= 104
    assert decode_png(images.qr_png(real)) == [("QRCode", real)]


@pytest.mark.parametrize("value", QR_LENGTHS.values(), ids=QR_LENGTHS.keys())
def test_qr_png_opens_in_pillow_as_a_1_bit_image_of_10_px_modules_and_decodes(value):
    image = Image.open(io.BytesIO(images.qr_png(value)))
    image.load()  # decompresses every scanline and checks each chunk's CRC
    modules = len(images.qr_matrix(value))
    assert image.format == "PNG" and image.mode == "1" and image.size == (modules * 10, modules * 10)
    assert decode_png(images.qr_png(value)) == [("QRCode", value)]


@pytest.mark.parametrize("value", QR_LENGTHS.values(), ids=QR_LENGTHS.keys())
def test_each_module_is_a_10_px_square_of_the_matrix_inside_a_white_4_module_quiet_zone(value):
    matrix = images.qr_matrix(value)
    size = len(matrix)
    image = Image.open(io.BytesIO(images.qr_png(value))).convert("L")
    # Sample the centre of every module, then draw the modules back at 10 px: the PNG must be exactly that.
    centres = image.resize((size, size), Image.Resampling.NEAREST)
    assert [[centres.getpixel((x, y)) == 0 for x in range(size)] for y in range(size)] == matrix
    assert centres.resize(image.size, Image.Resampling.NEAREST).tobytes() == image.tobytes()
    border = 4 * 10
    width = image.width
    for box in ((0, 0, width, border), (0, width - border, width, width),
                (0, 0, border, width), (width - border, 0, width, width)):
        assert image.crop(box).getextrema() == (255, 255), box  # all white
    assert image.crop((border, border, width - border, width - border)).getextrema() == (0, 255)
    assert matrix[4][4] and matrix[4 + 6][4 + 6]  # the finder pattern starts right after the quiet zone


def test_qr_png_is_signature_ihdr_one_idat_iend_with_valid_crcs():
    png = images.qr_png(realistic_token(5))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind, data = png[offset + 4:offset + 8], png[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        offset += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, compression, filtering, interlace) == (490, 490, 1, 0, 0, 0, 0)
    scanlines = zlib.decompress(chunks[1][1])
    assert len(scanlines) == 490 * (1 + 62)  # 490 px in 62 bytes, each line after its filter byte
    assert all(scanlines[y * 63] == 0 for y in range(490))


def test_qr_png_box_size_scales_the_modules():
    value = COUPON_CODES[0]
    image = Image.open(io.BytesIO(images.qr_png(value, box_size=3)))
    assert image.size == (len(images.qr_matrix(value)) * 3,) * 2
    assert decode_png(images.qr_png(value, box_size=3)) == [("QRCode", value)]


def test_qr_of_nothing_or_too_much_is_refused():
    for value in ("", "q" * 3000):
        with pytest.raises(ValueError):
            images.qr_png(value)


# The cache ------------------------------------------------------------------------------------------

@pytest.fixture
def small_cache(settings):
    settings.TESSERA_IMAGE_CACHE_SIZE = 2
    images.clear_cache()
    yield
    images.clear_cache()


def test_cached_images_are_rendered_once_per_kind_and_value(small_cache):
    first = images.cached("qr_png", "K7QP")
    assert images.cached("qr_png", "K7QP") is first
    assert first == images.render("qr_png", "K7QP")  # the same bytes and ETag as rendering now
    assert images.cached("qr_svg", "K7QP").media_type == "image/svg+xml"
    assert images.cache_info().hits == 1 and images.cache_info().misses == 2


def test_the_cache_keeps_only_the_configured_number_of_images(small_cache):
    for value in ("a", "b", "c"):
        images.cached("code128_svg", value)
    assert images.cache_info().maxsize == 2 and images.cache_info().currsize == 2
    images.cached("code128_svg", "a")  # pushed out by "c": rendered again
    assert images.cache_info().misses == 4


def test_the_etag_is_strong_and_changes_with_the_image():
    one, other = images.render("qr_png", "one"), images.render("qr_png", "other")
    assert re.fullmatch(r'"[0-9a-f]{32}"', one.etag) and one.etag != other.etag


# Endpoints ------------------------------------------------------------------------------------------

def card_url(card, name):
    return f"/api/v1/cards/{card.pk}/{name}"


@pytest.fixture
def owner(world):
    return client_for(world.customer.user)


@pytest.fixture
def stranger(db):
    return client_for(make_customer().user)


def test_rotating_qr_png_is_the_cards_current_token_and_not_cacheable_past_its_period(world, owner):
    response = owner.get(card_url(world.card, "qr.png"), HTTP_ACCEPT="image/png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    [(kind, text)] = decode_png(response.content)
    assert kind == "QRCode"
    check = tokens.verify_token(text, merchant=world.merchant)
    assert check.ok and check.card == world.card
    assert_not_cacheable_past_period(response, world.program.token_period_seconds)
    assert "Expires" in response


def test_rotating_qr_has_a_strong_etag_and_answers_304_within_its_period(world, owner):
    period = world.program.token_period_seconds
    if period - time.time() % period < 3:
        time.sleep(3)  # both requests in one period, so both show the same token
    response = owner.get(card_url(world.card, "qr.png"))
    etag = response["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = owner.get(card_url(world.card, "qr.png"), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert_not_cacheable_past_period(again, period)
    assert again["Expires"] == response["Expires"]
    stale = owner.get(card_url(world.card, "qr.png"), HTTP_IF_NONE_MATCH='"something-else"')
    assert stale.status_code == 200 and stale.content == response.content


def test_rotating_qr_svg_decodes_to_a_valid_token(world, owner):
    response = owner.get(card_url(world.card, "qr.svg"))
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    [(_, text)] = decode_png(rasterise_svg(response.content))
    assert tokens.verify_token(text, merchant=world.merchant).card == world.card
    assert_not_cacheable_past_period(response, world.program.token_period_seconds)


def assert_not_cacheable_past_period(response, period):
    cache_control = response["Cache-Control"]
    if cache_control == "no-store":
        return
    match = re.fullmatch(r"private, max-age=(\d+)", cache_control)
    assert match, cache_control
    left_in_period = period - (time.time() % period)
    # Slack for the time between the response and this check (decoding a slow CI machine's images).
    assert int(match.group(1)) <= min(period, left_in_period + 3)


@pytest.mark.parametrize("name,content_type", [("barcode.png", "image/png"), ("barcode.svg", "image/svg+xml")])
def test_barcode_is_the_card_number_with_strong_etag_and_304(world, owner, name, content_type):
    response = owner.get(card_url(world.card, name))
    assert response.status_code == 200 and response["Content-Type"] == content_type
    data = response.content if name.endswith("png") else rasterise_svg(response.content, scale=3)
    assert decode_png(data) == [("Code128", world.card.number)]
    etag = response["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert response["Cache-Control"] == "private, max-age=86400"
    again = owner.get(card_url(world.card, name), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    stale = owner.get(card_url(world.card, name), HTTP_IF_NONE_MATCH='"something-else"')
    assert stale.status_code == 200 and stale.content == response.content


def test_coupon_qr_is_the_coupon_code_and_cacheable(world, owner, stranger):
    buy(world.card, 20000)
    reward = Reward.objects.get(pk=world.coffee.pk)
    coupon = Redemption.objects.get(pk=redeem_reward(world.card, reward, idempotency_key="k1").redemption_id)
    response = owner.get(f"/api/v1/coupons/{coupon.pk}/qr.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert decode_png(response.content) == [("QRCode", coupon.coupon_code)]
    assert response["Cache-Control"] == "private, max-age=86400"
    assert owner.get(f"/api/v1/coupons/{coupon.pk}/qr.png", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert stranger.get(f"/api/v1/coupons/{coupon.pk}/qr.png").status_code == 404


@pytest.mark.parametrize("name", ["qr.png", "qr.svg", "barcode.png", "barcode.svg"])
def test_another_customers_card_images_are_not_found(world, stranger, name):
    response = stranger.get(card_url(world.card, name), HTTP_ACCEPT="image/png")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client_for().get(card_url(world.card, name)).status_code == 401


def test_images_of_a_missing_card_are_not_found(world, owner):
    assert owner.get("/api/v1/cards/999999/qr.png").status_code == 404
