"""The webhook CRM connector: batches of outbox events POSTed as signed JSON to the merchant's own URL.

Signed by the Standard Webhooks scheme (core.standard_webhooks), so a consumer verifies with any of
the spec's libraries. One POST per batch rather than per event: the delivery engine holds the
connection's lock for one bounded round trip instead of up to `batch_size` of them, and the answer
covers the batch as a whole, which is how the engine records it. The consumer dedupes by each
event's `id`. No retries here: the engine owns them (backoff, Retry-After, dead letters).
"""
import os
import threading
import time
from contextlib import nullcontext
from urllib.parse import urlsplit

import httpx

from core import standard_webhooks
from core.http import parse_retry_after
from core.vendor_urls import is_secure_or_loopback
from crm_sync.base import ConfigField, ConfigInvalid, CrmConnector, CrmRateLimited, CrmRejected, CrmUnavailable
from crm_sync.connectors.webhook.format import batch_body, batch_id
from crm_sync.types import OutboundEvent, PushResult

DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE = 50, 100
USER_AGENT = "Tessera-Webhooks/1"
ERROR_BODY_LIMIT = 16 * 1024  # enough for a consumer's error message; a huge answer is not read on


class WebhookCrmConnector(CrmConnector):
    key = "webhook"
    name = "Webhook (signed JSON)"
    config_fields = (
        ConfigField("url", "Endpoint URL",
                    help_text="Where Tessera POSTs the events: https (http only for localhost)."),
        ConfigField("signing_secret", "Signing secret", secret=True,
                    help_text="whsec_ followed by 24 to 64 random bytes in base64, shared with the receiver. "
                              "Generate one with core.standard_webhooks.generate_secret()."),
        ConfigField("previous_signing_secret", "Previous signing secret", secret=True, required=False,
                    help_text="While rotating: requests are signed with both secrets until you clear this."),
        ConfigField("batch_size", "Events per request", required=False,
                    help_text=f"1 to {MAX_BATCH_SIZE}; default {DEFAULT_BATCH_SIZE}."),
    )
    batch_size = DEFAULT_BATCH_SIZE
    # Short: the engine holds the connection's row lock while a request is in flight.
    timeout = httpx.Timeout(10.0, connect=5.0)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        size = self.config.get("batch_size")
        self.batch_size = DEFAULT_BATCH_SIZE if _blank(size) else (_batch_size(size) or DEFAULT_BATCH_SIZE)

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        if "url" not in errors:
            problem = url_problem(str(config["url"]).strip())
            if problem:
                errors["url"] = problem
        for name in ("signing_secret", "previous_signing_secret"):
            if name not in errors and not _blank(secrets.get(name)):
                try:
                    standard_webhooks.decode_secret(str(secrets[name]).strip())
                except ValueError as problem:
                    errors[name] = str(problem)
        if not _blank(config.get("batch_size")) and _batch_size(config["batch_size"]) is None:
            errors["batch_size"] = f"A whole number from 1 to {MAX_BATCH_SIZE}."
        if errors:
            raise ConfigInvalid(errors)

    def push(self, events: list[OutboundEvent]) -> list[PushResult]:
        """One POST per `batch_size` events, in order. If a later POST fails, the events already
        accepted count as delivered and the rest carry the failure."""
        results: list[PushResult] = []
        for start in range(0, len(events), self.batch_size):
            chunk = events[start:start + self.batch_size]
            try:
                self._post(chunk)
            except (CrmRateLimited, CrmUnavailable, CrmRejected) as error:
                if not results:
                    raise
                return results + _failed(events[start:], error)
            results += [PushResult.delivered(e.event_id) for e in chunk]
        return results

    def _post(self, events: list[OutboundEvent]) -> None:
        url = str(self.config["url"]).strip()
        host = urlsplit(url).hostname
        body = batch_body(events)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **standard_webhooks.sign(self._signing_secrets(), batch_id(events), int(time.time()), body),
        }
        try:
            with self._client() as client, client.stream("POST", url, content=body, headers=headers,
                                                         timeout=self.timeout) as response:
                answer = _read_capped(response)
        except httpx.TimeoutException as error:
            raise CrmUnavailable(f"{host} did not answer in time ({type(error).__name__}).") from error
        except httpx.TransportError as error:
            raise CrmUnavailable(f"Could not reach {host}: {type(error).__name__}: {error}") from error
        raise_for_status(host, response, answer)

    def _signing_secrets(self) -> list[str]:
        names = ("signing_secret", "previous_signing_secret")
        return [str(self.secrets[n]).strip() for n in names if not _blank(self.secrets.get(n))]

    def _client(self):
        if self.transport is None:
            return nullcontext(shared_client())
        return httpx.Client(transport=self.transport, follow_redirects=False)


def raise_for_status(host: str | None, response: httpx.Response, answer: str) -> None:
    """The documented meaning of the consumer's answer (README.md, "Answers")."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    said = f"{host} answered {status}" + (f": {answer}" if answer else "")
    if status == 429:
        raise CrmRateLimited(said, retry_after=retry_after)
    if status == 408 or status >= 500:
        raise CrmUnavailable(said, retry_after=retry_after)
    if status in (401, 403):
        raise CrmRejected(f"{said} (the receiver refused the request: check that it verifies signatures with "
                          f"this connection's signing secret)")
    if status == 410:
        raise CrmRejected(f"{said} (Gone: the receiver says this endpoint no longer exists; fix the URL or remove "
                          f"the connection, then retry the dead letters)")
    if 300 <= status < 400:
        raise CrmRejected(f"{said} (a redirect to {response.headers.get('location') or '?'}: Tessera does not "
                          f"follow redirects; set the final URL)")
    raise CrmRejected(said)


def url_problem(value: str) -> str:
    """Why `value` cannot be the endpoint, or "" when it can."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter an absolute URL, such as https://example.com/hooks/tessera."
    if not is_secure_or_loopback(value):
        return "Use https: http is allowed only for localhost."
    if parts.username or parts.password:
        return "Remove the credentials from the URL: it is not stored encrypted, and the signature proves the sender."
    return ""


def _failed(events: list[OutboundEvent], error: Exception) -> list[PushResult]:
    kind = {CrmRateLimited: "Rate limited", CrmUnavailable: "Unavailable"}.get(type(error), "Rejected")
    retryable = not isinstance(error, CrmRejected)
    return [PushResult(event_id=e.event_id, ok=False, error=f"{kind}: {error}", retryable=retryable,
                       retry_after=getattr(error, "retry_after", None)) for e in events]


def _read_capped(response: httpx.Response) -> str:
    """Up to ERROR_BODY_LIMIT bytes of the answer, one line: only error messages are read from it."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= ERROR_BODY_LIMIT:
            break
    return " ".join(data[:ERROR_BODY_LIMIT].decode("utf-8", "replace").split())[:500]


def _blank(value) -> bool:
    return value is None or not str(value).strip()


def _batch_size(value) -> int | None:
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_BATCH_SIZE:
        return None
    return int(text)


_shared: httpx.Client | None = None
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """One pooled client per process, so a drain of many batches reuses its TLS connections."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = httpx.Client(follow_redirects=False, headers={"accept": "application/json"})
        return _shared


def _forget_shared_client() -> None:
    """A forked worker must not share the parent's sockets."""
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_shared_client)
