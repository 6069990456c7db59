"""A local fake of the Stripe REST reads the connector makes, on a real socket in a thread.

Built from the reference (pos-vendors.md 3b): Bearer API key, `GET /v1/charges/{id}`,
`GET /v1/customers/{id}` (a deleted customer answers a `{"deleted": true}` tombstone), and
`GET /v1/refunds?charge=&limit=&starting_after=` as a list object (newest first, `has_more`). Errors use
Stripe's envelope `{"error": {"type", "code", "message"}}`: 401 for a wrong key, 404 `resource_missing`.
`fail()` queues 429/5xx answers (with Retry-After) to exercise retries and outages.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.fake_http import JsonRequestHandler, LocalServer


class FakeStripe(LocalServer):
    def __init__(self, *, api_key: str):
        self.api_key = api_key
        self.charges: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.requests: list[dict] = []  # {"method", "path", "query", "headers"}
        self.failures: list[tuple[int, dict]] = []
        super().__init__()

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.failures.extend([(status, headers)] * times)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            default_headers = {"Request-Id": "req_fake"}

            def _error(self, status: int, error_type: str, message: str, code: str | None = None, headers=None):
                error = {"type": error_type, "message": message, **({"code": code} if code else {})}
                self.send_json(status, {"error": error}, headers)

            def do_GET(self):
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with fake.lock:
                    fake.requests.append({"method": "GET", "path": url.path, "query": query,
                                          "headers": dict(self.headers.items())})
                    failure = fake.failures.pop(0) if fake.failures else None
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._error(401, "invalid_request_error", "Invalid API Key provided: sk_test_****")
                if failure:
                    status, headers = failure
                    kind = "rate_limit_error" if status == 429 else "api_error"
                    return self._error(status, kind, "Injected failure.", headers=headers)
                parts = url.path.strip("/").split("/")
                if parts[:2] == ["v1", "refunds"] and len(parts) == 2:
                    return self._list_refunds(query)
                stores = {"charges": fake.charges, "customers": fake.customers, "refunds": fake.refunds}
                if len(parts) == 3 and parts[0] == "v1" and parts[1] in stores:
                    found = stores[parts[1]].get(parts[2])
                    if found is None:
                        return self._error(404, "invalid_request_error", f"No such {parts[1][:-1]}: '{parts[2]}'",
                                           code="resource_missing")
                    return self.send_json(200, found)
                return self._error(404, "invalid_request_error", f"Unrecognized request URL (GET: {url.path}).")

            def _list_refunds(self, query: dict):
                limit = int(query.get("limit", 10))
                if not 1 <= limit <= 100:
                    return self._error(400, "invalid_request_error", "Invalid integer: limit",
                                       code="parameter_invalid_integer")
                matching = sorted(
                    (r for r in fake.refunds.values() if not query.get("charge") or r.get("charge") == query["charge"]),
                    key=lambda r: (r["created"], r["id"]), reverse=True,
                )
                if query.get("starting_after"):
                    ids = [r["id"] for r in matching]
                    matching = matching[ids.index(query["starting_after"]) + 1:]
                page = matching[:limit]
                return self.send_json(200, {"object": "list", "data": page, "has_more": len(matching) > limit,
                                            "url": "/v1/refunds"})

        return Handler
