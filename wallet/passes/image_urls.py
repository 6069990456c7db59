"""Signed, short-lived URLs of the rotating pass QR, served without Django's request stack.

    GET /i/<sealed>.png    GET /i/<sealed>.svg    (HEAD too; anything else is a 405)

Why: an <img src> cannot send an Authorization header, and the authenticated image endpoints pay for
DRF, a JWT check and a database lookup (about 5 ms of CPU) on every request. The pass-token endpoint
hands out these URLs (`qr_urls`) next to the token; `application`, mounted in front of Django by
config/wsgi.py, answers them from the URL alone: no database, no session, no middleware.

`<sealed>` is a Fernet token (AES-128-CBC, then HMAC-SHA256 over everything; base64url, padding
dropped) of: version (1 byte, 0x01) | expiry (4 bytes, unix seconds, big-endian) | the pass token's
raw bytes. So:
- the pass token is encrypted: it does not appear in an access log, a proxy log or a Referer header;
- nobody without the key can make a URL, and a changed one fails the HMAC: 404, as an expired one.
  (Fernet's own timestamp is the time of sealing; the expiry inside is what counts.)
- The URL expires when the token stops being accepted by `tokens.verify_token`: at the end of its
  period plus `token_drift_steps` periods. Until then the URL is a bearer capability worth exactly
  the token it shows; it travels only in the pass-token response, which is `no-store`.

The key is HKDF-SHA256 of settings.SECRET_KEY (no salt, info "tessera/pass-image-urls/fernet/v1"),
32 bytes, base64url-encoded as Fernet wants it. URLs sealed under a key in SECRET_KEY_FALLBACKS still
open, so rotating SECRET_KEY does not break the URLs of the last minute.

What a URL shows never changes, so it is cacheable until the URL expires (Cache-Control "private,
max-age=<seconds left>", "no-store" under a second) with a strong ETag; If-None-Match gives a 304.
Images come from `images.cached`. Errors use the API's JSON shape ({"error": {"code", "message",
"fields"}}).
"""
import base64
import functools
import json
import math
import re
import struct
import time
from wsgiref.handlers import format_date_time

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.urls import get_script_prefix

from core.errors import error_body
from wallet.passes import images, keys, tokens

PREFIX = "/i/"
VERSION = 1
_HKDF_INFO = b"tessera/pass-image-urls/fernet/v1"
_KINDS = {"png": "qr_png", "svg": "qr_svg"}
# A sealed pass token is 204 characters; the bound keeps junk away from the decoder.
_SEALED = re.compile(r"[A-Za-z0-9_-]{1,512}")
_HEAD = struct.Struct(">BI")


@functools.lru_cache(maxsize=4)
def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(secret) for secret in secrets])


def _now(now) -> float:
    return time.time() if now is None else float(now)


def url_expiry(card, now=None) -> int:
    """Unix time when a URL of the card's current token stops working: the end of the token's period
    plus its drift window, as long as `tokens.verify_token` accepts the token."""
    program = card.program
    return (tokens.time_step(_now(now), program.token_period_seconds) + 1 + program.token_drift_steps) \
        * program.token_period_seconds


def seal(token: str, expires: int) -> str:
    """The URL-safe, encrypted form of `token` with its expiry (unix seconds)."""
    plain = _HEAD.pack(VERSION, expires) + keys.b64url_decode(token)
    return _fernet().encrypt(plain).decode("ascii").rstrip("=")


def unseal(sealed: str, now=None) -> tuple[str, int] | None:
    """(token, expiry) from `seal`'s output, or None when it was changed, sealed under another key,
    or has expired by `now`."""
    if not _SEALED.fullmatch(sealed):
        return None
    padded = sealed + "=" * (-len(sealed) % 4)
    try:
        # One spelling per URL: base64 ignores the unused low bits of the last character, Fernet too.
        if base64.urlsafe_b64encode(base64.urlsafe_b64decode(padded)).decode("ascii") != padded:
            return None
        plain = _fernet().decrypt(padded)
    except (InvalidToken, ValueError):
        return None
    if len(plain) <= _HEAD.size:
        return None
    version, expires = _HEAD.unpack_from(plain)
    if version != VERSION or expires <= _now(now):
        return None
    return keys.b64url(plain[_HEAD.size:]), expires


def qr_urls(card, token: str, now=None) -> dict:
    """The image URLs (absolute paths) of `token`, the card's token at `now`."""
    sealed = seal(token, url_expiry(card, now))
    base = get_script_prefix().rstrip("/") + PREFIX
    return {"qr_png_url": f"{base}{sealed}.png", "qr_svg_url": f"{base}{sealed}.svg"}


# The WSGI side -----------------------------------------------------------------------------------------

_NOSNIFF = ("X-Content-Type-Options", "nosniff")


def _error(start_response, status: str, code: str, message: str, extra: tuple = ()) -> list[bytes]:
    body = json.dumps(error_body(code, message)).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), _NOSNIFF, *extra])
    return [body]


def if_none_match(header: str, etag: str) -> bool:
    """Whether an If-None-Match header matches `etag`: "*" or any listed tag, compared weakly (a
    W/ prefix is ignored), as RFC 9110 section 13.1.2 asks of If-None-Match."""
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def application(environ, start_response, *, now=None):
    """WSGI callable for PREFIX paths (see the module docstring). `now` (unix seconds) is for tests."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD"):
        return _error(start_response, "405 Method Not Allowed", "method_not_allowed",
                      f'Method "{method}" not allowed.', (("Allow", "GET, HEAD"),))
    sealed, _, extension = environ.get("PATH_INFO", "")[len(PREFIX):].rpartition(".")
    kind = _KINDS.get(extension)
    opened = unseal(sealed, now) if kind else None
    if opened is None:
        return _error(start_response, "404 Not Found", "not_found",
                      "No such image, or its link has expired: fetch the pass token again.")
    token, expires = opened
    image = images.cached(kind, token)
    left = math.floor(expires - _now(now))
    headers = [
        ("ETag", image.etag),
        ("Cache-Control", f"private, max-age={left}" if left >= 1 else "no-store"),
        ("Expires", format_date_time(expires)),
        _NOSNIFF,
    ]
    if if_none_match(environ.get("HTTP_IF_NONE_MATCH", ""), image.etag):
        start_response("304 Not Modified", headers)
        return []
    headers += [("Content-Type", image.media_type), ("Content-Length", str(len(image.body)))]
    start_response("200 OK", headers)
    return [] if method == "HEAD" else [image.body]


def mount(django_application):
    """A WSGI callable that sends PREFIX paths to `application` and everything else to Django."""

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return application(environ, start_response)
        return django_application(environ, start_response)

    return dispatch
