"""The few Klaviyo REST calls the connector makes, with the revision pinned.

Every call carries the private key (`Authorization: Klaviyo-API-Key pk_...`), a pinned `revision`
header, so a new Klaviyo revision never changes the shapes we send, and JSON:API content types. One
httpx client per push keeps the connection open across its requests; timeouts always. Nothing is
retried here: the delivery engine owns retries and waits at least Klaviyo's Retry-After, so a push
never sleeps while it holds the connection's lock. Failures are typed by what the caller does next.
"""
import re

import httpx

from core.http import parse_retry_after

REVISION = "2026-07-15"
PRODUCTION_URL = "https://a.klaviyo.com"
JSON_API = "application/vnd.api+json"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Klaviyo's 429 body says when capacity returns ("Expected available in 7 seconds."); used when the
# response has no Retry-After header.
_THROTTLE_DETAIL = re.compile(r"available in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


class KlaviyoError(Exception):
    """`status` is None for a transport failure; `code` and `detail` come from Klaviyo's error body."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", detail: str = "",
                 retry_after: float | None = None, duplicate_profile_id: str = ""):
        super().__init__(message)
        self.status, self.code, self.detail = status, code, detail
        self.retry_after, self.duplicate_profile_id = retry_after, duplicate_profile_id


class KlaviyoUnavailable(KlaviyoError):
    """5xx, a timeout or a dropped connection: try again later."""


class KlaviyoRateLimited(KlaviyoError):
    """429: wait at least `retry_after` seconds (when known)."""


class KlaviyoUnauthorized(KlaviyoError):
    """401: the key is wrong or revoked, so every call fails until the merchant fixes it."""


class KlaviyoForbidden(KlaviyoError):
    """403: the key lacks this endpoint's scope; calls to other endpoints may still work."""


class KlaviyoRefused(KlaviyoError):
    """Another 4xx: Klaviyo refuses this request for good (an invalid email, a conflict...)."""


class KlaviyoClient:
    def __init__(self, api_key: str, *, base_url: str = PRODUCTION_URL, transport: httpx.BaseTransport | None = None,
                 timeout: httpx.Timeout = TIMEOUT):
        self.http = httpx.Client(
            base_url=(base_url or PRODUCTION_URL).rstrip("/"),
            headers={"Authorization": f"Klaviyo-API-Key {api_key}", "revision": REVISION, "Accept": JSON_API},
            timeout=timeout, transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def upsert_profile(self, body: dict) -> str:
        """`POST /api/profile-import` (201 created, 200 updated) -> Klaviyo's profile id."""
        response = self._send("POST", "/api/profile-import", json_body=body)
        try:
            return str(response.json()["data"]["id"])
        except (ValueError, KeyError, TypeError):
            return ""

    def create_event(self, body: dict) -> None:
        """`POST /api/events` (202: accepted; Klaviyo processes it shortly after)."""
        self._send("POST", "/api/events", json_body=body)

    def subscribe(self, body: dict) -> None:
        self._send("POST", "/api/profile-subscription-bulk-create-jobs", json_body=body)

    def unsubscribe(self, body: dict) -> None:
        self._send("POST", "/api/profile-subscription-bulk-delete-jobs", json_body=body)

    def profile_ids_by_external_id(self, external_id: str) -> list[str]:
        """`GET /api/profiles?filter=equals(external_id,"...")` -> the ids of the profiles holding it."""
        response = self._send("GET", "/api/profiles", params={
            "filter": f'equals(external_id,"{external_id}")', "fields[profile]": "external_id",
        })
        try:
            return [str(profile["id"]) for profile in response.json().get("data") or []]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise KlaviyoUnavailable("GET /api/profiles answered with something that is not a profile list.") \
                from error

    def request_deletion(self, body: dict) -> None:
        self._send("POST", "/api/data-privacy-deletion-jobs", json_body=body)

    def _send(self, method: str, path: str, *, json_body: dict | None = None, params: dict | None = None):
        request = {"params": params}
        if json_body is not None:
            request.update(json=json_body, headers={"Content-Type": JSON_API})
        try:
            response = self.http.request(method, path, **request)
        except httpx.TimeoutException as error:
            raise KlaviyoUnavailable(f"{method} {path} timed out ({type(error).__name__}).") from error
        except httpx.TransportError as error:
            raise KlaviyoUnavailable(f"{method} {path} failed: {type(error).__name__}.") from error
        if response.is_success:
            return response
        raise error_for(method, path, response)


def error_for(method: str, path: str, response: httpx.Response) -> KlaviyoError:
    """The typed error for a non-2xx answer, carrying Klaviyo's first error (code, detail)."""
    status = response.status_code
    first = _first_error(response)
    code, detail = str(first.get("code") or ""), str(first.get("detail") or first.get("title") or "")
    message = f"{method} {path} answered {status}" + (f" ({code}: {detail})" if code or detail else "")
    fields = {"status": status, "code": code, "detail": detail}
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            match = _THROTTLE_DETAIL.search(detail)
            retry_after = float(match.group(1)) if match else None
        return KlaviyoRateLimited(message, retry_after=retry_after, **fields)
    if status >= 500:
        return KlaviyoUnavailable(message, retry_after=parse_retry_after(response.headers.get("Retry-After")),
                                  **fields)
    if status == 401:
        return KlaviyoUnauthorized(message, **fields)
    if status == 403:
        return KlaviyoForbidden(message, **fields)
    meta = first.get("meta") if isinstance(first.get("meta"), dict) else {}
    duplicate = str(meta.get("duplicate_profile_id") or "")
    return KlaviyoRefused(message, duplicate_profile_id=duplicate, **fields)


def _first_error(response: httpx.Response) -> dict:
    try:
        errors = response.json().get("errors") or [{}]
        return errors[0] if isinstance(errors[0], dict) else {}
    except (ValueError, AttributeError, IndexError, TypeError):
        return {}
