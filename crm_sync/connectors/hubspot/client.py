"""The HubSpot REST calls the connector makes, with HubSpot's answers turned into typed errors.

One httpx client per batch or webhook (its connections reused across the requests), a Bearer token,
timeouts always. No retries here: the delivery engine owns them, so a 429 becomes `CrmRateLimited`
with the wait HubSpot asked for and a 5xx or a timeout becomes `CrmUnavailable`. A request HubSpot
refuses as invalid (400/409/413/422) raises `BatchRefused`: one bad record fails a whole HubSpot
batch, so the caller splits the batch to find it (see `batches`).
"""
from urllib.parse import quote

import httpx

from core.http import parse_retry_after
from crm_sync.base import CrmRateLimited, CrmRejected, CrmUnavailable
from crm_sync.connectors.hubspot.batches import BatchRefused

DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CONTACTS_UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
EVENTS_BATCH_PATH = "/events/v3/send/batch"
CONTACT_PATH = "/crm/v3/objects/contacts/{id}"
BATCH_LIMIT = 100  # inputs per CRM batch request (wallet-crm-vendors.md 4.1, [H4])
REFUSED_AS_INVALID = frozenset({400, 409, 413, 422})
# HubSpot documents no Retry-After on 429 (wallet-crm-vendors.md 7): wait by the policy that was hit.
POLICY_WAIT_SECONDS = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0, "DAILY": 3600.0}
DEFAULT_RATE_LIMIT_WAIT = 10.0


def describe(method: str, path: str, response: httpx.Response) -> str:
    """`POST /path answered 400: VALIDATION_ERROR: <message> (correlationId ...)` from HubSpot's error body."""
    text = f"{method} {path} answered {response.status_code}"
    body = _json(response)
    detail = ": ".join(str(body[key]) for key in ("category", "message") if body.get(key))
    if detail:
        text = f"{text}: {detail}"
    if body.get("correlationId"):
        text = f"{text} (correlationId {body['correlationId']})"
    return text


def rate_limit_wait(response: httpx.Response) -> float:
    """Seconds to wait after a 429: Retry-After if sent, else by HubSpot's `policyName`."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    policy = str(_json(response).get("policyName") or "")
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    if policy == "TEN_SECONDLY_ROLLING" and interval.isdigit():
        return int(interval) / 1000
    return POLICY_WAIT_SECONDS.get(policy, DEFAULT_RATE_LIMIT_WAIT)


class HubSpotClient:
    def __init__(self, access_token: str, *, base_url: str = DEFAULT_BASE_URL,
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None):
        self.http = httpx.Client(
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def upsert_contacts(self, contacts: list[tuple[str, dict]]) -> dict[int, str]:
        """Create or update contacts by email (at most BATCH_LIMIT). Returns {position: error} for the
        inputs a 207 answer reports as failed; a 200 means all were written."""
        inputs = [{"id": email, "idProperty": "email", "properties": properties} for email, properties in contacts]
        response = self._call("POST", CONTACTS_UPSERT_PATH, json={"inputs": inputs})
        if response.status_code != 207:
            return {}
        return partial_failures([email for email, _ in contacts], _json(response))

    def send_events(self, occurrences: list[dict]) -> dict[int, str]:
        """Send custom event occurrences (at most BATCH_LIMIT); HubSpot answers 204 with no body."""
        self._call("POST", EVENTS_BATCH_PATH, json={"inputs": occurrences})
        return {}

    def contact_email(self, object_id: str) -> str | None:
        """The email of contact `object_id`, or None when HubSpot has no such contact."""
        path = CONTACT_PATH.format(id=quote(str(object_id), safe=""))
        try:
            response = self._call("GET", path, params={"properties": "email"})
        except BatchRefused as refused:
            if refused.status == 404:
                return None
            raise CrmRejected(str(refused)) from refused
        properties = _json(response).get("properties") or {}
        return str(properties.get("email") or "") or None

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise CrmUnavailable(f"{method} {path}: HubSpot did not answer in time ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise CrmUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from error
        if response.is_success:
            return response
        detail, status = describe(method, path, response), response.status_code
        if status == 429:
            raise CrmRateLimited(detail, retry_after=rate_limit_wait(response))
        if status >= 500:
            raise CrmUnavailable(detail, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise CrmRejected(f"{detail}. Check the private app's access token and its scopes.")
        if status in REFUSED_AS_INVALID or (status == 404 and method == "GET"):
            raise BatchRefused(detail, status=status)
        raise CrmRejected(detail)


def partial_failures(emails: list[str], body: dict) -> dict[int, str]:
    """Which inputs of a 207 failed: those an error names in `context.ids`; else those missing from
    `results` (HubSpot does not always fill the error context); else, unattributable, all of them."""
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    position = {email.lower(): i for i, email in enumerate(emails)}
    failed: dict[int, str] = {}
    for error in errors:
        for value in (error.get("context") or {}).get("ids") or []:
            if str(value).lower() in position:
                failed.setdefault(position[str(value).lower()], _error_text(error))
    if failed:
        return failed
    written = {str((r.get("properties") or {}).get("email") or "").lower()
               for r in body.get("results") or [] if isinstance(r, dict)} - {""}
    fallback = _error_text(errors[0]) if errors else "HubSpot did not confirm this contact."
    return {i: fallback for email, i in position.items() if not written or email not in written}


def _error_text(error: dict) -> str:
    return f"{error.get('category') or 'ERROR'}: {error.get('message') or 'refused by HubSpot'}"


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
