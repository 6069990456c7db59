"""A local fake of the three Stripe endpoints billing calls, on a real socket in a thread.

Built from Stripe's API reference: `POST /v1/customers`, `POST /v1/checkout/sessions` and
`POST /v1/billing_portal/sessions`, each with a form-encoded body whose nested parameters use brackets
(`line_items[0][price]`, `metadata[key]`), `Authorization: Bearer <secret key>`, and answers in
Stripe's JSON (`object: "customer"`, `"checkout.session"` with its hosted `url`,
`"billing_portal.session"`). Idempotency as Stripe documents it: the first answer for an
`Idempotency-Key` is replayed for the same parameters (with `Idempotent-Replayed: true`), and the
same key with other parameters is a 400 `idempotency_error`. Errors use Stripe's envelope
`{"error": {"type", "code", "message", "param"}}`: 401 for a wrong key, 400 `resource_missing` for
an unknown customer or price, 400 `parameter_missing`. `fail()` queues 5xx answers.
"""
from __future__ import annotations

import itertools
import re
import time
from urllib.parse import parse_qsl

from tests.fake_http import JsonRequestHandler, LocalServer

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def decode_form(body: str) -> dict:
    """Stripe's form encoding back into nested dicts and lists: a[b]=1 -> {"a": {"b": "1"}},
    a[0][c]=2 -> {"a": [{"c": "2"}]}."""
    result: dict = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head = raw_key.split("[", 1)[0]
        path = [head, *_KEY_PART.findall(raw_key[len(head):])]
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _lists(result)


def _lists(node):
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


class FakeStripeBilling(LocalServer):
    poll_interval = 0.05

    def __init__(self, *, secret_key: str):
        self.secret_key = secret_key
        self.prices: set[str] = set()
        self.customers: dict[str, dict] = {}
        self.checkout_sessions: dict[str, dict] = {}
        self.portal_sessions: dict[str, dict] = {}
        self.requests: list[dict] = []  # {"method", "path", "params", "headers"}
        self.failures: list[int] = []
        self._idempotency: dict[str, tuple[str, dict, int, dict]] = {}
        self._ids = itertools.count(1)
        super().__init__()

    def fail(self, status: int, *, times: int = 1) -> None:
        self.failures.extend([status] * times)

    def posts(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == path]

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids):06d}Fake"

    # Endpoints: (status, body) from the decoded params ----------------------------------------------

    def _create_customer(self, params: dict) -> tuple[int, dict]:
        customer = {
            "id": self._new_id("cus"), "object": "customer", "created": int(time.time()), "livemode": False,
            "name": params.get("name"), "email": params.get("email"), "metadata": params.get("metadata") or {},
        }
        self.customers[customer["id"]] = customer
        return 200, customer

    def _create_checkout_session(self, params: dict) -> tuple[int, dict]:
        for required in ("mode", "success_url"):
            if not params.get(required):
                return _invalid(f"Missing required param: {required}.", "parameter_missing", required)
        if params.get("customer") and params["customer"] not in self.customers:
            return _invalid(f"No such customer: '{params['customer']}'", "resource_missing", "customer")
        for index, item in enumerate(params.get("line_items") or []):
            if item.get("price") not in self.prices:
                return _invalid(f"No such price: '{item.get('price')}'", "resource_missing",
                                f"line_items[{index}][price]")
        session_id = self._new_id("cs")
        session = {
            "id": session_id, "object": "checkout.session", "created": int(time.time()), "livemode": False,
            "mode": params["mode"], "status": "open", "payment_status": "unpaid",
            "customer": params.get("customer"), "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {}, "subscription": None,
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#fidkdWxOYHwnPyd1blpxYHZxWjA0",
        }
        self.checkout_sessions[session_id] = {**session, "line_items": params.get("line_items"),
                                              "subscription_data": params.get("subscription_data") or {}}
        return 200, session

    def _create_portal_session(self, params: dict) -> tuple[int, dict]:
        if not params.get("customer"):
            return _invalid("Missing required param: customer.", "parameter_missing", "customer")
        if params["customer"] not in self.customers:
            return _invalid(f"No such customer: '{params['customer']}'", "resource_missing", "customer")
        session_id = self._new_id("bps")
        session = {
            "id": session_id, "object": "billing_portal.session", "created": int(time.time()), "livemode": False,
            "customer": params["customer"], "return_url": params.get("return_url"), "configuration": "bpc_test_Fake",
            "locale": None, "on_behalf_of": None, "flow": None,
            "url": f"https://billing.stripe.com/p/session/test_{session_id}",
        }
        self.portal_sessions[session_id] = session
        return 200, session

    def _handler_class(self):
        fake = self
        routes = {
            "/v1/customers": fake._create_customer,
            "/v1/checkout/sessions": fake._create_checkout_session,
            "/v1/billing_portal/sessions": fake._create_portal_session,
        }

        class Handler(JsonRequestHandler):
            default_headers = {"Request-Id": "req_fake"}

            def do_POST(self):
                raw = self.read_body().decode()
                params = decode_form(raw)
                key = self.headers.get("Idempotency-Key")
                with fake.lock:
                    fake.requests.append({"method": "POST", "path": self.path, "params": params,
                                          "headers": dict(self.headers.items())})
                    failure = fake.failures.pop(0) if fake.failures else None
                    if self.headers.get("Authorization") != f"Bearer {fake.secret_key}":
                        return self.send_json(401, {"error": {
                            "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"}})
                    if failure:
                        return self.send_json(failure, {"error": {"type": "api_error", "message": "Injected failure."}},
                                              {"Stripe-Should-Retry": "false"})
                    route = routes.get(self.path)
                    if route is None:
                        message = f"Unrecognized request URL (POST: {self.path})."
                        return self.send_json(404, {"error": {"type": "invalid_request_error", "message": message}})
                    if key and key in fake._idempotency:
                        path, first_params, status, body = fake._idempotency[key]
                        if (path, first_params) != (self.path, params):
                            return self.send_json(400, {"error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used with the same parameters "
                                           "they were first used with."}})
                        return self.send_json(status, body, {"Idempotent-Replayed": "true", "Idempotency-Key": key})
                    status, body = route(params)
                    if key and status < 500:
                        fake._idempotency[key] = (self.path, params, status, body)
                    return self.send_json(status, body, {"Idempotency-Key": key} if key else None)

        return Handler


def _invalid(message: str, code: str, param: str) -> tuple[int, dict]:
    return 400, {"error": {"type": "invalid_request_error", "code": code, "message": message, "param": param}}
