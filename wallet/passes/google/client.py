"""Google Wallet REST client for loyalty classes and objects (walletobjects/v1).

One `httpx.Client` per instance (connection reuse), explicit timeouts, Bearer auth from
`ServiceAccountCredentials`, and typed errors so the caller (a Celery task) decides whether and when to
retry: `RateLimited` carries `retry_after`, `ServerError` and `TransportError` are retryable, other 4xx
are permanent. The only retry done here is the one Google's own auth libraries do: a 401 drops the
cached access token and the request is sent once more with a fresh one.
"""
from __future__ import annotations

from urllib.parse import quote

import httpx
from django.conf import settings

from core.http import parse_retry_after
from wallet.passes.google.credentials import DEFAULT_TIMEOUT, ServiceAccountCredentials
from wallet.passes.google.objects import card_fields, loyalty_class, loyalty_object, object_id


class GoogleWalletError(Exception):
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


class TransportError(GoogleWalletError):
    """Timeout or connection failure: the request may or may not have been applied."""

    retryable = True


class ServerError(GoogleWalletError):
    """5xx."""

    retryable = True


class RateLimited(GoogleWalletError):
    """429; `retry_after` is seconds from the Retry-After header, or None when Google sent none."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentError(GoogleWalletError):
    """A 4xx that sending the same request again will not fix."""


class NotFound(PermanentError):
    """404: no class or object with that id."""


class Conflict(PermanentError):
    """409: an insert for an id that already exists."""


class Unauthorized(PermanentError):
    """401/403: the token is refused, or the service account is not a user of the issuer."""


class GoogleWalletClient:
    def __init__(
        self,
        base_url: str,
        credentials: ServiceAccountCredentials,
        http_client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ):
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, headers={"Accept": "application/json"})

    @classmethod
    def from_settings(cls) -> GoogleWalletClient:
        http = httpx.Client(timeout=DEFAULT_TIMEOUT, headers={"Accept": "application/json"})
        credentials = ServiceAccountCredentials.from_settings(http_client=http)
        client = cls(settings.GOOGLE_WALLET["API_BASE_URL"], credentials, http)
        client._owns_http = True
        return client

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- low level --------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, json: dict | None = None) -> dict:
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.credentials.token()}"}
            try:
                response = self._http.request(method, url, json=json, headers=headers)
            except httpx.TimeoutException as exc:
                raise TransportError(f"{method} {path} timed out: {exc}") from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {path} failed: {exc}") from exc
            if response.status_code == 401 and attempt == 1:
                self.credentials.invalidate()
                continue
            break
        return self._result(method, path, response)

    @staticmethod
    def _result(method: str, path: str, response: httpx.Response) -> dict:
        status = response.status_code
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"raw": response.text[:500]}
        if 200 <= status < 300:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        detail = error.get("message", "") if isinstance(error, dict) else ""
        message = f"{method} {path} -> {status} {detail}".strip()
        kwargs = {"status": status, "body": body}
        if status == 404:
            raise NotFound(message, **kwargs)
        if status == 409:
            raise Conflict(message, **kwargs)
        if status == 429:
            raise RateLimited(message, retry_after=parse_retry_after(response.headers.get("Retry-After")), **kwargs)
        if status in (401, 403):
            raise Unauthorized(message, **kwargs)
        if status >= 500:
            raise ServerError(message, **kwargs)
        raise PermanentError(message, **kwargs)

    @staticmethod
    def _id(resource_id: str) -> str:
        return quote(resource_id, safe="")

    # -- loyaltyClass -------------------------------------------------------------------------------------

    def insert_class(self, body: dict) -> dict:
        return self._request("POST", "/loyaltyClass", body)

    def get_class(self, resource_id: str) -> dict:
        return self._request("GET", f"/loyaltyClass/{self._id(resource_id)}")

    def patch_class(self, resource_id: str, body: dict) -> dict:
        return self._request("PATCH", f"/loyaltyClass/{self._id(resource_id)}", body)

    # -- loyaltyObject ------------------------------------------------------------------------------------

    def insert_object(self, body: dict) -> dict:
        return self._request("POST", "/loyaltyObject", body)

    def get_object(self, resource_id: str) -> dict:
        return self._request("GET", f"/loyaltyObject/{self._id(resource_id)}")

    def patch_object(self, resource_id: str, body: dict) -> dict:
        return self._request("PATCH", f"/loyaltyObject/{self._id(resource_id)}", body)

    # -- Tessera operations --------------------------------------------------------------------------------

    def upsert_class(self, program) -> dict:
        """Insert the program's class; if it exists, patch it (still reviewStatus UNDER_REVIEW)."""
        body = loyalty_class(program)
        try:
            return self.insert_class(body)
        except Conflict:
            return self.patch_class(body["id"], {k: v for k, v in body.items() if k != "id"})

    def upsert_object(self, card) -> dict:
        """Insert the card's object; if the id exists (409), patch it with the same fields."""
        body = loyalty_object(card)
        try:
            return self.insert_object(body)
        except Conflict:
            return self.patch_object(body["id"], {k: v for k, v in body.items() if k != "id"})

    def update_card_object(self, card, *, notify: bool = False, insert_if_missing: bool = True) -> dict:
        """PATCH what a balance change touches: points, tier, state, message (PUT would replace all).

        `notify` asks Google to notify the holder (NOTIFY_ON_UPDATE, sent per request; it shares the
        3-per-24-hours budget). If the object was never inserted (404), it is inserted in full.
        """
        body = card_fields(card)
        if notify:
            body["notifyPreference"] = "NOTIFY_ON_UPDATE"
        try:
            return self.patch_object(object_id(card), body)
        except NotFound:
            if not insert_if_missing:
                raise
            return self.insert_object(loyalty_object(card))
