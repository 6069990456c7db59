"""A local fake of Google's OAuth token endpoint and the Wallet loyaltyClass/loyaltyObject REST API.

Built from the reference (wallet-crm-vendors.md section 3): JWT bearer grant with an RS256 assertion
(checked against the service account's public key, scope and aud), Bearer-authenticated
`/walletobjects/v1/loyaltyClass[/{id}]` and `/loyaltyObject[/{id}]` with POST/GET/PATCH, the Google error
envelope, 409 on a duplicate insert (unverified upstream), 404 for an unknown id, and a switch to answer
429 with Retry-After or 500. HTTP/1.1 keep-alive, so connection reuse can be observed.
"""
from __future__ import annotations

import json
import secrets
from urllib.parse import unquote

from tests.fake_http import JsonRequestHandler, LocalServer
from tests.google_oauth_fake import jwt_grant_error

WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
API_PREFIX = "/walletobjects/v1"
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


class FakeGoogleWallet(LocalServer):
    def __init__(self, *, client_email: str, public_key_pem: str):
        self.client_email = client_email
        self.public_key_pem = public_key_pem
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.classes: dict[str, dict] = {}
        self.objects: dict[str, dict] = {}
        self.requests: list[tuple[str, str, tuple]] = []  # (method, path, client address)
        self.fail_next: list[tuple[int, dict]] = []  # (status, extra headers), consumed in order
        super().__init__()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def api_base_url(self) -> str:
        return f"{self.url}{API_PREFIX}"

    def fail(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.fail_next.extend([(status, headers)] * times)

    # -- request handling ---------------------------------------------------------------------------------

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            content_type = "application/json; charset=UTF-8"
            _send = JsonRequestHandler.send_json  # the name tests/engagement/test_wallet_pass_channel.py extends with

            def _error(self, status: int, message: str, headers: dict | None = None):
                body = {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "")}}
                self.send_json(status, body, headers)

            def _dispatch(self):
                raw = self.read_body()
                with fake.lock:
                    fake.requests.append((self.command, self.path, self.client_address))
                if self.path == "/token" and self.command == "POST":
                    return self._token(raw)
                if not self.path.startswith(API_PREFIX + "/"):
                    return self._error(404, "no such endpoint")
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in fake.tokens:
                    return self._error(401, "Request had invalid authentication credentials.",
                                       {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
                with fake.lock:
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                if failure:
                    status, headers = failure
                    return self._error(status, "injected failure", headers)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    return self._error(400, "Invalid JSON payload received.")
                return self._api(body)

            do_GET = do_POST = do_PATCH = do_PUT = _dispatch

            def _token(self, raw: bytes):
                fake.token_requests += 1
                error = jwt_grant_error(raw, public_key_pem=fake.public_key_pem, token_url=fake.token_url,
                                        client_email=fake.client_email, scope=WALLET_SCOPE)
                if error:
                    return self.send_json(400, error)
                token = "ya29.fake-" + secrets.token_urlsafe(24)
                fake.tokens.add(token)
                return self.send_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

            def _api(self, body):
                rest = self.path[len(API_PREFIX) + 1:].split("?", 1)[0]
                kind, _, resource_id = rest.partition("/")
                resource_id = unquote(resource_id)
                store = {"loyaltyClass": fake.classes, "loyaltyObject": fake.objects}.get(kind)
                if store is None:
                    return self._error(404, "no such endpoint")
                with fake.lock:
                    if self.command == "POST" and not resource_id:
                        if not isinstance(body, dict) or not body.get("id"):
                            return self._error(400, "id is required")
                        if kind == "loyaltyObject" and body.get("classId") not in fake.classes:
                            return self._error(400, f"Class {body.get('classId')} not found")
                        if body["id"] in store:
                            return self._error(409, f"Resource with id {body['id']} already exists")
                        store[body["id"]] = dict(body)
                        return self.send_json(200, store[body["id"]])
                    if not resource_id:
                        return self._error(404, "no such endpoint")
                    if resource_id not in store:
                        return self._error(404, f"Resource {resource_id} not found")
                    if self.command == "GET":
                        return self.send_json(200, store[resource_id])
                    if self.command == "PATCH":
                        if not isinstance(body, dict) or body.get("id", resource_id) != resource_id:
                            return self._error(400, "id in body does not match the path")
                        body = {k: v for k, v in body.items() if k != "notifyPreference"}  # ephemeral
                        store[resource_id].update(body)
                        return self.send_json(200, store[resource_id])
                return self._error(400, "unsupported method")

        return Handler
