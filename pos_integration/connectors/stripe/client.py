"""The few Stripe REST reads the connector needs, through `core.http.VendorHttp` (timeouts, bounded
retries honouring Retry-After on 429 and 5xx).

Webhook payloads carry ids, not the related objects (`latest_charge`, `customer`, and since API
version 2022-11-15 a charge's `refunds`), so the receipt number, the customer's email and the list of
refunds are read here. Every failure becomes a `ConnectorError`: the delivery is marked failed and is
retried or replayed later, never applied with half the facts.
"""
import json
import re

from core.http import VendorError, VendorHttp
from pos_integration.base import ConnectorError

DEFAULT_API_BASE = "https://api.stripe.com"
# Pinned so the objects we read keep one shape whatever the account's default version is.
STRIPE_VERSION = "2024-06-20"
REFUND_PAGE_SIZE = 100  # Stripe's maximum `limit` for list calls
_OBJECT_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")


class StripeApi:
    def __init__(self, api_key: str, *, api_base: str = DEFAULT_API_BASE, transport=None):
        self.http = VendorHttp(
            api_base or DEFAULT_API_BASE,
            headers={"Authorization": f"Bearer {api_key}", "Stripe-Version": STRIPE_VERSION},
            transport=transport,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.http.close()

    def charge(self, charge_id: str) -> dict:
        return self._get(f"/v1/charges/{_checked(charge_id)}")

    def customer(self, customer_id: str) -> dict | None:
        """The customer, or None when Stripe no longer has them (a deleted customer's tombstone, or 404)."""
        path = f"/v1/customers/{_checked(customer_id)}"
        try:
            found = self.http.get_json(path)
        except VendorError as error:
            if error.status == 404:
                return None
            raise _connector_error(path, error) from error
        return None if found.get("deleted") else found

    def refunds_of_charge(self, charge_id: str) -> list[dict]:
        """Every refund of a charge, following Stripe's cursor pagination (`has_more`, `starting_after`)."""
        refunds, params = [], {"charge": _checked(charge_id), "limit": REFUND_PAGE_SIZE}
        while True:
            page = self._get("/v1/refunds", params=params)
            refunds.extend(page.get("data") or [])
            if not page.get("has_more") or not page.get("data"):
                return refunds
            params = {**params, "starting_after": page["data"][-1]["id"]}

    def _get(self, path: str, *, params: dict | None = None) -> dict:
        try:
            return self.http.get_json(path, params=params)
        except VendorError as error:
            raise _connector_error(path, error) from error
        except ValueError as error:
            raise ConnectorError(f"Stripe API: GET {path} did not answer JSON.") from error


def _checked(object_id: str) -> str:
    """Ids go into URL paths: accept only Stripe's id alphabet (ch_..., cus_...)."""
    if not isinstance(object_id, str) or not _OBJECT_ID.match(object_id):
        raise ConnectorError(f"Not a Stripe object id: {object_id!r}")
    return object_id


def _connector_error(path: str, error: VendorError) -> ConnectorError:
    if error.status == 401:
        return ConnectorError("Stripe refused the API key (401): check the connection's api_key.")
    return ConnectorError(f"Stripe API: {error}{_stripe_message(error.body)}")


def _stripe_message(body: str) -> str:
    """Stripe's error envelope is {"error": {"type", "code", "message", ...}}; keep its code and message."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return ""
    return f" ({error.get('code') or error.get('type') or 'error'}: {error.get('message') or ''})"
