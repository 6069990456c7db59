"""A local fake of the Square v2 REST calls the connector makes, on a real socket.

Built from the reference (pos-vendors.md 1b): `GET /v2/customers/{id}` -> `{"customer": {...}}`,
`GET /v2/payments/{id}` -> `{"payment": {...}}`, Bearer authentication (401 UNAUTHORIZED otherwise), a
dated `Square-Version` header (400 INVALID_SQUARE_VERSION_FORMAT otherwise), 404 NOT_FOUND for an unknown
id, all errors in Square's `{"errors": [{"category", "code", "detail"}]}` shape, and a switch to answer
429 RATE_LIMITED (with Retry-After) or a 5xx for the next requests.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from tests.fake_http import JsonRequestHandler, LocalServer

ROUTES = {"customers": ("customers", "customer"), "payments": ("payments", "payment")}
ERROR_CODES = {400: ("INVALID_REQUEST_ERROR", "INVALID_SQUARE_VERSION_FORMAT"),
               401: ("AUTHENTICATION_ERROR", "UNAUTHORIZED"), 404: ("INVALID_REQUEST_ERROR", "NOT_FOUND"),
               429: ("RATE_LIMIT_ERROR", "RATE_LIMITED"), 500: ("API_ERROR", "INTERNAL_SERVER_ERROR"),
               503: ("API_ERROR", "SERVICE_UNAVAILABLE")}
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PATH = re.compile(r"^/v2/(customers|payments)/([^/?]+)$")


class FakeSquare(LocalServer):
    def __init__(self, *, access_token: str):
        self.access_token = access_token
        self.customers: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.fail_next: list[tuple[int, dict]] = []  # (status, extra headers), consumed in order
        super().__init__()

    def fail(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.fail_next.extend([(status, headers)] * times)

    def paths(self) -> list[str]:
        return [path for _method, path, _headers in self.requests]

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            def _error(self, status: int, detail: str, headers: dict | None = None):
                category, code = ERROR_CODES.get(status, ("API_ERROR", "INTERNAL_SERVER_ERROR"))
                self.send_json(status, {"errors": [{"category": category, "code": code, "detail": detail}]}, headers)

            def do_GET(self):
                with fake.lock:
                    fake.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                if self.headers.get("Authorization") != f"Bearer {fake.access_token}":
                    return self._error(401, "This request could not be authorized.")
                if not _VERSION.match(self.headers.get("Square-Version") or ""):
                    return self._error(400, "Square-Version must be a date, YYYY-MM-DD.")
                if failure:
                    status, headers = failure
                    return self._error(status, "injected failure", headers)
                match = _PATH.match(self.path)
                if not match:
                    return self._error(404, f"No route {self.path}.")
                collection, wrapper = ROUTES[match.group(1)]
                found = getattr(fake, collection).get(unquote(match.group(2)))
                if found is None:
                    return self._error(404, f"Could not find {wrapper} {unquote(match.group(2))}.")
                return self.send_json(200, {wrapper: found})

        return Handler
