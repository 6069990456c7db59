"""Calling a vendor's REST API from a connector: timeouts always, a few retries where they are safe.

`VendorHttp.request` retries GETs (and any call the caller marks idempotent) on transport errors,
429 and 5xx, waiting Retry-After when the vendor sends one (capped) or an exponential backoff with
jitter. Anything else that is not 2xx raises `VendorError` with the status, so a connector can tell
a permanent refusal (4xx) from "try again later" (`retryable`). Secrets in headers are never logged.
"""
import email.utils
import random
import time

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_WAIT_SECONDS = 30.0


class VendorError(Exception):
    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False, body: str = ""):
        super().__init__(message)
        self.status, self.retryable, self.body = status, retryable, body[:2000]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class VendorHttp:
    """One vendor's HTTP client: base URL, default headers, timeouts, bounded retries."""

    def __init__(self, base_url: str, *, headers: dict | None = None, attempts: int = 3,
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None,
                 sleep=time.sleep):
        self.client = httpx.Client(base_url=base_url, headers=headers or {}, timeout=timeout, transport=transport)
        self.attempts, self.sleep = attempts, sleep

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs) -> httpx.Response:
        retry_allowed = method.upper() in ("GET", "HEAD") if idempotent is None else idempotent
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts or not retry_allowed
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError as error:
                if last:
                    raise VendorError(f"{method} {path}: {type(error).__name__}", retryable=True) from error
                self._wait(attempt, None)
                continue
            if response.is_success:
                return response
            retryable = response.status_code == 429 or response.status_code >= 500
            if not retryable or last:
                raise VendorError(
                    f"{method} {path} answered {response.status_code}", status=response.status_code,
                    retryable=retryable, body=response.text,
                )
            self._wait(attempt, parse_retry_after(response.headers.get("Retry-After")))
        raise AssertionError("unreachable")

    def get_json(self, path: str, **kwargs) -> dict:
        return self.request("GET", path, **kwargs).json()

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else (2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        self.sleep(min(delay, MAX_WAIT_SECONDS))
