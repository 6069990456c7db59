"""Clover's Platform REST API (v3), the calls the connector needs, through core.http.VendorHttp.

Bearer auth with the merchant's OAuth access token (or a sandbox test token). VendorHttp gives
timeouts, retries on 429 (honouring Retry-After) and 5xx, and raises VendorError otherwise. Ids are
checked before they go into a path. Lists are paged with offset/limit until a short page.
"""
import time
from urllib.parse import quote

import httpx

from core.http import VendorError, VendorHttp
from pos_integration.connectors.clover.mapping import elements, is_safe_object_id

PRODUCTION_BASE_URL = "https://api.clover.com"
PAYMENT_EXPAND = "refunds"
ORDER_EXPAND = "lineItems,customers"
CUSTOMER_EXPAND = "emailAddresses,phoneNumbers"
PAGE_SIZE = 100
# A runaway listing (a server that ignores offset) must end; 100 pages is 10,000 objects a poll.
MAX_PAGES = 100


class CloverClient:
    def __init__(self, *, base_url: str, api_token: str, merchant_id: str,
                 transport: httpx.BaseTransport | None = None, sleep=time.sleep):
        self.merchant_id = merchant_id
        self.http = VendorHttp(
            base_url or PRODUCTION_BASE_URL,
            headers={"Authorization": f"Bearer {api_token}", "Accept": "application/json"},
            transport=transport, sleep=sleep,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _path(self, collection: str, object_id: str = "") -> str:
        path = f"/v3/merchants/{quote(self.merchant_id, safe='')}/{collection}"
        if object_id:
            if not is_safe_object_id(object_id):
                raise VendorError(f"Refusing to request Clover {collection} with id {object_id!r}.", status=400)
            path += f"/{object_id}"
        return path

    def payment(self, payment_id: str) -> dict:
        return self.http.get_json(self._path("payments", payment_id), params={"expand": PAYMENT_EXPAND})

    def order(self, order_id: str) -> dict:
        return self.http.get_json(self._path("orders", order_id), params={"expand": ORDER_EXPAND})

    def customer(self, customer_id: str) -> dict | None:
        """The customer with emails and phones; None if Clover no longer has it (deleted)."""
        try:
            return self.http.get_json(self._path("customers", customer_id), params={"expand": CUSTOMER_EXPAND})
        except VendorError as error:
            if error.status == 404:
                return None
            raise

    def refund(self, refund_id: str) -> dict:
        return self.http.get_json(self._path("refunds", refund_id))

    def payments_modified_since(self, since_ms: int) -> list[dict]:
        return self._list("payments", {"filter": f"modifiedTime>={since_ms}", "expand": PAYMENT_EXPAND,
                                       "orderBy": "modifiedTime ASC"})

    def refunds_created_since(self, since_ms: int) -> list[dict]:
        return self._list("refunds", {"filter": f"createdTime>={since_ms}", "orderBy": "createdTime ASC"})

    def _list(self, collection: str, params: dict) -> list[dict]:
        found = []
        for page in range(MAX_PAGES):
            answer = self.http.get_json(self._path(collection),
                                        params={**params, "limit": PAGE_SIZE, "offset": page * PAGE_SIZE})
            batch = elements(answer)
            found += batch
            if len(batch) < PAGE_SIZE:
                break
        return found
