"""The few Square REST calls the connector needs (Customers and Payments APIs, v2).

Every call carries the merchant's access token as a Bearer token and a pinned `Square-Version`, so a
change of the application's default version in Square's console never changes the shapes we read.
Timeouts and retries (429 with Retry-After, 5xx, transport errors) come from core.http.VendorHttp.
"""
import json
import time
from urllib.parse import quote

import httpx

from core.http import VendorError, VendorHttp

PRODUCTION_URL = "https://connect.squareup.com"
SANDBOX_URL = "https://connect.squareupsandbox.com"
SQUARE_VERSION = "2025-08-20"


class SquareApiError(Exception):
    """Square refused or could not answer; `retryable` when a later replay may succeed."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status, self.retryable = status, retryable


def describe(error: VendorError) -> str:
    """`GET /v2/... answered 401 (UNAUTHORIZED: ...)` from Square's `{"errors": [...]}` body."""
    try:
        first = (json.loads(error.body).get("errors") or [{}])[0]
    except (ValueError, AttributeError, IndexError, TypeError):
        return str(error)
    code, detail = first.get("code") or "", first.get("detail") or ""
    return f"{error} ({code}: {detail})" if code or detail else str(error)


class SquareClient:
    def __init__(self, access_token: str, *, base_url: str = PRODUCTION_URL,
                 transport: httpx.BaseTransport | None = None, sleep=time.sleep):
        self.http = VendorHttp(
            (base_url or PRODUCTION_URL).rstrip("/"),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Square-Version": SQUARE_VERSION,
                "Accept": "application/json",
            },
            transport=transport,
            sleep=sleep,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def retrieve_customer(self, customer_id: str) -> dict | None:
        """`GET /v2/customers/{id}` -> the Customer, or None when Square no longer has it (deleted
        or merged profiles answer 404; the sale then just lacks that clue)."""
        return self._get(f"/v2/customers/{quote(customer_id, safe='')}", "customer", missing_ok=True)

    def get_payment(self, payment_id: str) -> dict:
        """`GET /v2/payments/{id}` -> the Payment, as Square holds it now."""
        return self._get(f"/v2/payments/{quote(payment_id, safe='')}", "payment", missing_ok=False)

    def _get(self, path: str, wrapper: str, *, missing_ok: bool) -> dict | None:
        try:
            body = self.http.get_json(path)
        except VendorError as error:
            if missing_ok and error.status == 404:
                return None
            raise SquareApiError(describe(error), status=error.status, retryable=error.retryable) from error
        except ValueError as error:
            raise SquareApiError(f"GET {path} answered with something that is not JSON.", retryable=True) from error
        found = body.get(wrapper) if isinstance(body, dict) else None
        if not isinstance(found, dict):
            raise SquareApiError(f"GET {path} answered without a {wrapper} object.")
        return found
