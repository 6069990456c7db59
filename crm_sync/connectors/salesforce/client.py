"""The one Salesforce REST call the connector makes: sObject Collections upsert by external id.

`PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}` with
`{"allOrNone": false, "records": [...]}` (wallet-crm-vendors.md 5.4): at most 200 records a call,
processed and answered in order, one UpsertResult each, and it counts as one API call however many
records it holds. Longer lists are split here.

Whole-call errors map to the CRM contract: 401 gets one fresh token and then is a refusal; 403
REQUEST_LIMIT_EXCEEDED is the org's rolling 24-hour API limit (Salesforce's rate limit, not an auth
failure); 429 and 5xx and timeouts are "later"; any other 4xx is a refusal. No retry loops here: the
delivery engine owns retries and their timing.
"""
from urllib.parse import quote

import httpx

from core.http import parse_retry_after
from crm_sync.base import CrmRateLimited, CrmRejected, CrmUnavailable
from crm_sync.connectors.salesforce.auth import TOKENS, Credentials, TokenCache

COLLECTION_LIMIT = 200
DEFAULT_API_VERSION = "v62.0"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Salesforce sends no Retry-After with REQUEST_LIMIT_EXCEEDED; its limit frees up as the day rolls on.
REQUEST_LIMIT_WAIT_SECONDS = 1800.0


def describe(response: httpx.Response) -> str:
    """`PATCH /services/... answered 404 (NOT_FOUND: The requested resource does not exist)`."""
    request = response.request
    head = f"{request.method} {request.url.path} answered {response.status_code}"
    codes = [f"{e.get('errorCode') or e.get('statusCode') or '?'}: {e.get('message') or ''}"
             for e in _errors(response)]
    return f"{head} ({'; '.join(codes)})" if codes else head


def _errors(response: httpx.Response) -> list[dict]:
    """Salesforce's error body: a JSON array of {message, errorCode, fields}."""
    try:
        body = response.json()
    except ValueError:
        return []
    body = body if isinstance(body, list) else [body]
    return [e for e in body if isinstance(e, dict)]


class SalesforceApi:
    """One integration user's API session: a pooled HTTP client, timeouts, the shared token cache."""

    def __init__(self, credentials: Credentials, *, api_version: str = DEFAULT_API_VERSION, instance_url: str = "",
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None,
                 tokens: TokenCache = TOKENS):
        self.credentials, self.api_version, self.tokens = credentials, api_version, tokens
        self.instance_url = instance_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout, transport=transport, headers={"Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def upsert(self, sobject: str, external_id_field: str, records: list[dict]) -> list[dict]:
        """Upsert `records` (without `attributes`) in calls of at most 200. One UpsertResult each, in order."""
        path = (f"/services/data/{self.api_version}/composite/sobjects/"
                f"{quote(sobject, safe='')}/{quote(external_id_field, safe='')}")
        results = []
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = records[start:start + COLLECTION_LIMIT]
            body = {"allOrNone": False, "records": [{"attributes": {"type": sobject}, **r} for r in chunk]}
            results.extend(self._upsert_results(self._send("PATCH", path, body), len(chunk)))
        return results

    def _send(self, method: str, path: str, body: dict) -> httpx.Response:
        token = self.tokens.get(self.http, self.credentials)
        response = self._request(method, path, body, token)
        if response.status_code == 401:  # expired or revoked session: one fresh token, then it is final
            self.tokens.invalidate(self.credentials, token)
            response = self._request(method, path, body, self.tokens.get(self.http, self.credentials))
        self._raise_for_status(response)
        return response

    def _request(self, method: str, path: str, body: dict, token) -> httpx.Response:
        url = (self.instance_url or token.instance_url) + path
        try:
            return self.http.request(method, url, json=body, headers={"Authorization": f"Bearer {token.value}"})
        except httpx.TransportError as error:
            raise CrmUnavailable(f"{method} {path}: {type(error).__name__}") from error

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        status = response.status_code
        if response.is_success:
            return
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        codes = {e.get("errorCode") for e in _errors(response)}
        if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
            raise CrmRateLimited(describe(response), retry_after=retry_after or REQUEST_LIMIT_WAIT_SECONDS)
        if status == 429:
            raise CrmRateLimited(describe(response), retry_after=retry_after)
        if status >= 500:
            raise CrmUnavailable(describe(response), retry_after=retry_after)
        if status == 401:
            raise CrmRejected(f"{describe(response)}: refused a fresh token too; check the integration user")
        raise CrmRejected(describe(response))

    @staticmethod
    def _upsert_results(response: httpx.Response, expected: int) -> list[dict]:
        try:
            results = response.json()
        except ValueError as error:
            raise CrmUnavailable(f"{describe(response)} with a body that is not JSON") from error
        if not isinstance(results, list) or len(results) != expected or not all(isinstance(r, dict) for r in results):
            raise CrmUnavailable(f"{describe(response)} without one UpsertResult per record")
        return results
