"""The cashier's web till without a browser: its security headers, that it loads nothing from elsewhere
(the CSP would block it, and a till must work without the internet), and the vendored decoder."""
import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import resolve

STATIC = Path(__file__).resolve().parents[2] / "pos_integration" / "static" / "pos_integration"
VENDOR = STATIC / "vendor"
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "poster", "data", "srcset", "background"}


class PageParts(HTMLParser):
    """Every URL-bearing attribute, every inline script or style, every inline event handler."""

    def __init__(self):
        super().__init__()
        self.urls, self.inline, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.urls += [(tag, name, value) for name, value in attrs.items() if value and (
            name in URL_ATTRIBUTES or (name.startswith("data-") and value.startswith(("/", "http", "//"))))]
        self.inline += [f"{tag} {name}=" for name in attrs if name.startswith("on") or name == "style"]
        if tag == "style" or (tag == "script" and "src" not in attrs):
            self._in = tag

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append(f"<{self._in}> {data.strip()[:40]}")

    def handle_endtag(self, tag):
        self._in = None


def csp_directives(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


def test_the_page_is_served_with_a_strict_csp_no_referrer_no_caching_and_the_camera_for_itself(client):
    response = client.get("/till/")
    assert response.status_code == 200
    csp = csp_directives(response["Content-Security-Policy"])
    for directive in ("default-src", "script-src", "style-src", "connect-src"):
        assert csp[directive] == {"'self'"}, directive
    assert csp["img-src"] == {"'self'", "data:", "blob:"}
    assert csp["media-src"] == {"'self'", "blob:"}
    assert csp["frame-ancestors"] == {"'none'"} and csp["object-src"] == {"'none'"}
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    assert "camera=(self)" in response["Permissions-Policy"].replace(" ", "")
    assert response["X-Frame-Options"] == "DENY"


def test_the_page_only_shows_itself(client):
    assert client.post("/till/").status_code == 405


def test_the_page_loads_only_same_origin_files_that_exist_and_nothing_inline(client):
    html = client.get("/till/").content.decode()
    parts = PageParts()
    parts.feed(html)
    assert parts.inline == [], "the CSP blocks inline scripts, styles and handlers: the page would break"
    scripts = [url for tag, _, url in parts.urls if tag == "script"]
    assert scripts, "the page must load its script"
    for tag, name, url in parts.urls:
        assert not url.startswith(("http:", "https:", "//")), f"<{tag} {name}={url}> leaves the origin"
        if url.startswith(settings.STATIC_URL) or url.startswith("/" + settings.STATIC_URL):
            assert client.get(url).status_code == 200, url
        elif url.startswith("/"):
            resolve(url)  # the API addresses the script is given exist
    assert any(name == "data-decoder" for _, name, _ in parts.urls), "the script loads the decoder from here"
    assert "http://" not in html and "https://" not in html


@pytest.mark.parametrize("name", ["till.js", "till.css"])
def test_our_script_and_styles_name_no_other_site_and_never_eval(name):
    text = (STATIC / name).read_text()
    assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "eval(" not in text and "new Function" not in text and "innerHTML" not in text
    assert "sourceMappingURL" not in text  # the manifest storage would look for a map we do not ship
    assert finders.find(f"pos_integration/{name}")


def test_the_vendored_decoder_is_the_recorded_release_with_its_licence():
    record = json.loads((VENDOR / "zxing-library.json").read_text())
    assert (record["package"], record["license"]) == ("@zxing/library", "Apache-2.0")
    vendored = (VENDOR / record["vendored_file"]).read_text()
    header, _, rest = vendored.partition("*/\n")
    assert header.startswith(f"/*! @zxing/library {record['version']} | Apache-2.0 |")
    assert record["npm_integrity"] in header and "zxing-library.LICENSE.txt" in header
    body = rest[:-1] if rest.endswith("\n") else rest
    # A hand edit of the bundle (or a partial re-vendor) shows up here: re-run scripts/vendor-js.
    assert hashlib.sha256(body.encode()).hexdigest() == record["source_sha256"]
    assert "sourceMappingURL" not in vendored and "eval(" not in vendored
    licence = (VENDOR / record["license_file"]).read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
    assert finders.find(f"pos_integration/vendor/{record['vendored_file']}")
