"""The signed pass-QR URLs: handed out with the pass token, fetched with no Authorization header
through the WSGI entry point (config.wsgi.application, the /i/ paths never reach Django), showing the
same token, expiring with it, and useless once changed."""
import json
import time
from wsgiref.util import setup_testing_defaults

import pytest
from django.core import signals
from django.db import close_old_connections

from config.wsgi import application as wsgi_application
from tests.api.conftest import client_for
from tests.factories import make_customer
from tests.passes.test_images import decode_png, rasterise_svg
from wallet.passes import image_urls, images, tokens

pytestmark = pytest.mark.django_db


class Answer:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def error(self) -> dict:
        assert self.headers["Content-Type"] == "application/json"
        body = json.loads(self.body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
        return body["error"]


def fetch(path: str, method: str = "GET", now: float | None = None, **headers) -> Answer:
    """A request as gunicorn hands it over: no Authorization header unless given. With `now`, the /i/
    callable is called directly at that time; without, through config.wsgi.application."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, **headers}
    setup_testing_defaults(environ)
    started = []

    def start_response(status, response_headers, exc_info=None):
        started.append((status, response_headers))

    if now is None:
        chunks = wsgi_application(environ, start_response)
    else:
        chunks = image_urls.application(environ, start_response, now=now)
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return Answer(*started[0], body)


@pytest.fixture
def owner(world):
    return client_for(world.customer.user)


@pytest.fixture
def pass_token(world, owner) -> dict:
    response = owner.get(f"/api/v1/cards/{world.card.pk}/pass-token/")
    assert response.status_code == 200, response.content
    return response.json()


def sealed_of(url: str) -> str:
    return url.removeprefix(image_urls.PREFIX).rpartition(".")[0]


def test_pass_token_lists_a_png_and_an_svg_url_of_one_sealed_token(pass_token):
    png, svg = pass_token["qr_png_url"], pass_token["qr_svg_url"]
    assert png.startswith("/i/") and png.endswith(".png") and svg == png.removesuffix(".png") + ".svg"


def test_the_png_url_needs_no_authorization_and_shows_the_same_token(world, pass_token):
    answer = fetch(pass_token["qr_png_url"])
    assert answer.status == 200 and answer.headers["Content-Type"] == "image/png"
    assert decode_png(answer.body) == [("QRCode", pass_token["token"])]
    assert tokens.verify_token(pass_token["token"], merchant=world.merchant).card == world.card
    assert answer.headers["Content-Length"] == str(len(answer.body))
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["ETag"] == images.render("qr_png", pass_token["token"]).etag


def test_the_svg_url_shows_the_same_token(pass_token):
    answer = fetch(pass_token["qr_svg_url"])
    assert answer.status == 200 and answer.headers["Content-Type"] == "image/svg+xml"
    assert decode_png(rasterise_svg(answer.body)) == [("QRCode", pass_token["token"])]


def test_the_token_cannot_be_read_from_the_url(pass_token):
    token, url = pass_token["token"], pass_token["qr_png_url"]
    assert token not in url
    assert not any(token[start:start + 8] in url for start in range(len(token) - 8))


def test_the_url_lives_until_the_token_is_no_longer_accepted(world, pass_token):
    program = world.program
    _, expires = image_urls.unseal(sealed_of(pass_token["qr_png_url"]))
    from django.utils.dateparse import parse_datetime

    period_end = parse_datetime(pass_token["expires_at"]).timestamp()
    assert expires == period_end + program.token_drift_steps * program.token_period_seconds
    # verify_token accepts the token up to that moment and no longer
    assert tokens.verify_token(pass_token["token"], now=expires - 1, merchant=world.merchant).ok
    assert tokens.verify_token(pass_token["token"], now=expires, merchant=world.merchant).reason == tokens.EXPIRED

    ten_left = fetch(pass_token["qr_png_url"], now=expires - 10)
    assert ten_left.status == 200 and ten_left.headers["Cache-Control"] == "private, max-age=10"
    assert ten_left.headers["Expires"] == time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(expires))
    last_moment = fetch(pass_token["qr_png_url"], now=expires - 0.5)
    assert last_moment.status == 200 and last_moment.headers["Cache-Control"] == "no-store"


def test_an_expired_url_is_not_found(pass_token):
    _, expires = image_urls.unseal(sealed_of(pass_token["qr_png_url"]))
    for url in (pass_token["qr_png_url"], pass_token["qr_svg_url"]):
        answer = fetch(url, now=expires)
        assert answer.status == 404 and answer.error()["code"] == "not_found"


def test_fresh_urls_are_cacheable_at_most_until_they_expire(world, pass_token):
    answer = fetch(pass_token["qr_png_url"])
    cache_control = answer.headers["Cache-Control"]
    program = world.program
    longest = (1 + program.token_drift_steps) * program.token_period_seconds
    assert cache_control.startswith("private, max-age=")
    assert 0 < int(cache_control.removeprefix("private, max-age=")) <= longest


def tampered(sealed: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(sealed[index]) + 1) % len(alphabet)]
    return sealed[:index] + replacement + sealed[index + 1:]


@pytest.mark.parametrize("index", [0, 20, 100, -5, -1])
def test_a_changed_url_is_not_found_in_the_error_shape(pass_token, index):
    sealed = sealed_of(pass_token["qr_png_url"])
    answer = fetch(f"/i/{tampered(sealed, index)}.png")
    assert answer.status == 404
    assert answer.error() == {"code": "not_found", "fields": {},
                              "message": "No such image, or its link has expired: fetch the pass token again."}


def test_a_url_has_one_spelling(pass_token):
    """The last character's unused low bits would decode to the same bytes: refused."""
    sealed = sealed_of(pass_token["qr_png_url"])
    unused_bits = {0: 0, 2: 4, 3: 2}[len(sealed) % 4]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if unused_bits:
        respelt = sealed[:-1] + alphabet[alphabet.index(sealed[-1]) ^ 1]
        assert fetch(f"/i/{respelt}.png").status == 404
    assert fetch(f"/i/{sealed}.png").status == 200


@pytest.mark.parametrize("path", ["/i/", "/i/.png", "/i/{sealed}.gif", "/i/{sealed}", "/i/{sealed}x.png",
                                  "/i/{sealed}.png/", "/i/é{sealed}.png", "/i/{sealed}{sealed}{sealed}.png",
                                  "/i/" + "A" * 600 + ".png"])
def test_anything_else_under_i_is_not_found(pass_token, path):
    answer = fetch(path.format(sealed=sealed_of(pass_token["qr_png_url"])))
    assert answer.status == 404 and answer.error()["code"] == "not_found"


def test_a_url_sealed_under_another_secret_key_is_not_found(settings, pass_token):
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert fetch(pass_token["qr_png_url"]).status == 404


def test_urls_sealed_before_a_secret_key_rotation_still_open(settings, pass_token):
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-" + "x" * 40
    assert fetch(pass_token["qr_png_url"]).status == 200
    expires = int(time.time()) + 60
    assert image_urls.unseal(image_urls.seal("AQID", expires)) == ("AQID", expires)  # new URLs: the new key


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_only_get_and_head_are_allowed(pass_token, method):
    answer = fetch(pass_token["qr_png_url"], method=method)
    assert answer.status == 405 and answer.headers["Allow"] == "GET, HEAD"
    assert answer.error()["code"] == "method_not_allowed"


def test_head_answers_the_headers_without_the_image(pass_token):
    full, head = fetch(pass_token["qr_png_url"]), fetch(pass_token["qr_png_url"], method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(full.body)) and head.headers["ETag"] == full.headers["ETag"]


def test_a_matching_if_none_match_is_a_304(pass_token):
    first = fetch(pass_token["qr_png_url"])
    again = fetch(pass_token["qr_png_url"], HTTP_IF_NONE_MATCH=first.headers["ETag"])
    assert again.status == 304 and again.body == b"" and again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"] or "no-store" in again.headers.values()
    assert fetch(pass_token["qr_png_url"], HTTP_IF_NONE_MATCH=f'"other", W/{first.headers["ETag"]}').status == 304
    assert fetch(pass_token["qr_png_url"], HTTP_IF_NONE_MATCH='"other"').status == 200


def test_another_customer_gets_no_url_for_a_card_that_is_not_theirs(world):
    response = client_for(make_customer().user).get(f"/api/v1/cards/{world.card.pk}/pass-token/")
    assert response.status_code == 404 and "qr_png_url" not in response.content.decode()
    assert client_for().get(f"/api/v1/cards/{world.card.pk}/pass-token/").status_code == 401


@pytest.fixture
def keep_test_connection():
    """Django's WSGI handler closes the database connection at request start and end; the test's
    transaction must survive it (as in tests/api/test_schema_fuzz.py)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_other_path_goes_to_django(world, keep_test_connection):
    assert fetch("/api/health/").status == 200
    for path in ("/img/anything.png", "/i"):  # only /i/ is ours: Django's own HTML 404 for these
        not_found = fetch(path)
        assert not_found.status == 404 and not_found.headers["Content-Type"].startswith("text/html")
    assert fetch(f"/api/v1/cards/{world.card.pk}/qr.png").status == 401  # Django's auth, as before
