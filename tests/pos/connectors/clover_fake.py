"""A local fake of Clover's Platform REST API (v3), the part the connector reads.

Built from the reference (pos-vendors.md section 4b): Bearer auth, `/v3/merchants/{mId}/payments[/{id}]`,
`/orders/{id}`, `/customers/{id}`, `/refunds[/{id}]`; `expand=` adds expandable collections wrapped as
{"elements": [...]} (left out otherwise); lists answer {"elements": [...], "href": ...} with
offset/limit paging, repeated `filter=field<op>value` (ANDed) and `orderBy=field ASC|DESC`; 404
{"message": "Not Found"}; a switch to answer 429 with Retry-After, or 5xx. Refunds are their own
objects pointing at their payment ({"payment": {"id"}}) and appear in the payment's `refunds` when
expanded; recording one does not touch the payment's modifiedTime (Clover's behaviour is unverified).
"""
from __future__ import annotations

import copy
import operator
import re
from urllib.parse import parse_qs, urlsplit

from tests.fake_http import JsonRequestHandler, LocalServer

EXPANDABLE = {
    "payments": {"refunds", "order", "tender"},
    "orders": {"lineItems", "customers", "payments", "refunds"},
    "customers": {"emailAddresses", "phoneNumbers", "addresses", "cards", "metadata"},
    "refunds": set(),
}
FILTER = re.compile(r"^(?P<field>[A-Za-z.]+)(?P<op>>=|<=|!=|>|<|=)(?P<value>.*)$")
COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq,
               "!=": operator.ne}
PATH = re.compile(r"^/v3/merchants/(?P<mid>[^/]+)/(?P<collection>[a-z]+)(?:/(?P<id>[^/]+))?$")


class FakeClover(LocalServer):
    poll_interval = 0.05

    def __init__(self, *, token: str):
        self.token = token
        self.data: dict[str, dict[str, dict[str, dict]]] = {}  # merchant id -> collection -> id -> object
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, query)
        self.fail_next: list[tuple[int, dict]] = []
        super().__init__()

    # -- state ----------------------------------------------------------------------------------------------

    def put(self, merchant_id: str, collection: str, obj: dict) -> dict:
        with self.lock:
            self.data.setdefault(merchant_id, {}).setdefault(collection, {})[obj["id"]] = copy.deepcopy(obj)
        return obj

    def add_sale(self, merchant_id: str, payment: dict, order: dict, customer: dict | None = None) -> None:
        self.put(merchant_id, "orders", order)
        self.put(merchant_id, "payments", payment)
        if customer is not None:
            self.put(merchant_id, "customers", customer)

    def update_payment(self, merchant_id: str, payment_id: str, **fields) -> None:
        with self.lock:
            self.data[merchant_id]["payments"][payment_id].update(fields)

    def fail(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.fail_next.extend([(status, headers)] * times)

    def calls(self, collection: str, object_id: str | None = None) -> list[dict]:
        """Queries of the GETs made to a collection (one object, or the list when object_id is None)."""
        wanted = re.compile(rf"^/v3/merchants/[^/]+/{collection}" + (rf"/{object_id}$" if object_id else "$"))
        return [query for _method, path, query in self.requests if wanted.match(path)]

    # -- rendering as Clover answers ----------------------------------------------------------------------

    def _render(self, merchant_id: str, collection: str, obj: dict, expand: set[str]) -> dict:
        shown = copy.deepcopy(obj)
        for name in EXPANDABLE[collection] - expand:
            if name != "order":  # a reference to the order ({"id"}) is always there
                shown.pop(name, None)
        if collection == "payments" and "refunds" in expand:
            refunds = self.data.get(merchant_id, {}).get("refunds", {}).values()
            shown["refunds"] = {"elements": [copy.deepcopy(r) for r in refunds if r["payment"]["id"] == obj["id"]]}
        return shown

    def _list(self, merchant_id: str, collection: str, query: dict) -> tuple[int, dict]:
        rows = list(self.data.get(merchant_id, {}).get(collection, {}).values())
        for expression in query.get("filter", []):
            match = FILTER.match(expression)
            if not match:
                return 400, {"message": f"Invalid filter: {expression}"}
            rows = [r for r in rows if _compare(r.get(match["field"]), match["op"], match["value"])]
        if query.get("orderBy"):
            field, _, direction = query["orderBy"][0].partition(" ")
            rows.sort(key=lambda r: r.get(field) or 0, reverse=direction.upper() == "DESC")
        offset = int(query.get("offset", ["0"])[0])
        limit = min(int(query.get("limit", ["100"])[0]), 1000)
        expand = _expand(query)
        page = [self._render(merchant_id, collection, row, expand) for row in rows[offset:offset + limit]]
        return 200, {"elements": page, "href": f"{self.url}/v3/merchants/{merchant_id}/{collection}?limit={limit}"}

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with fake.lock:
                    fake.requests.append((self.command, parts.path, query))
                if self.headers.get("Authorization", "") != f"Bearer {fake.token}":
                    return self.send_json(401, {"message": "401 Unauthorized"})
                with fake.lock:
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                if failure:
                    status, headers = failure
                    return self.send_json(status, {"message": "injected failure"}, headers)
                route = PATH.match(parts.path)
                if not route or route["collection"] not in EXPANDABLE:
                    return self.send_json(404, {"message": "Not Found"})
                with fake.lock:
                    if route["id"] is None:
                        return self.send_json(*fake._list(route["mid"], route["collection"], query))
                    obj = fake.data.get(route["mid"], {}).get(route["collection"], {}).get(route["id"])
                    if obj is None:
                        return self.send_json(404, {"message": "Not Found"})
                    return self.send_json(200, fake._render(route["mid"], route["collection"], obj, _expand(query)))

        return Handler


def _expand(query: dict) -> set[str]:
    return {name for value in query.get("expand", []) for name in value.split(",") if name}


def _compare(actual, op: str, raw: str) -> bool:
    expected = int(raw) if isinstance(actual, int) and raw.lstrip("-").isdigit() else raw
    if actual is None or type(actual) is not type(expected):
        return False
    return COMPARISONS[op](actual, expected)
