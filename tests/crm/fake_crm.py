"""A tiny CRM on a real local socket, for the delivery engine's tests and benchmark.

Its API, which `crm_test_connector` follows like a vendor's documentation:

    POST /v1/events/batch
    Authorization: Bearer <api key>            (else 401 {"error": "unauthorized"})
    Content-Type: application/json
    {"events": [{"id", "type", "occurred_at", "customer": {...} | null, "card": {...} | null,
                 "payload": {...}}, ...]}     (1 to 100 events, else 400 {"error": "batch_too_large"})
    200 {"results": [{"id", "status": "ok"} | {"id", "status": "error", "error", "retryable"}, ...]}

Each event is an upsert twice over: its record is keyed by the event id (a resend replaces it, never
adds one), and its customer's contact is keyed by customer id and takes the card snapshot the event
carries (the last write wins, like a CRM property). The fake also keeps what a CRM would not, to test
against: how often each event id arrived, the order of first arrivals, and when.

Failures to inject: `fail(status, times, retry_after)` answers the next requests with an error,
`down(status)` / `up()` for an outage, `hang(seconds)` sleeps without answering (a timeout),
`slow_next(seconds)` stores a batch and then sleeps before answering (a worker can die meanwhile),
`reject_customer(id)` fails that customer's events one by one with a retryable error.
"""
from __future__ import annotations

import json
import time
from collections import Counter

from tests.fake_http import JsonRequestHandler, LocalServer

BATCH_PATH = "/v1/events/batch"
MAX_BATCH = 100


class FakeCrm(LocalServer):
    def __init__(self, *, api_key: str, latency: float = 0.0):
        """`latency`: seconds every accepted batch takes, like a real CRM's round trip (benchmarks)."""
        self.api_key, self.latency = api_key, latency
        self.records: dict[str, dict] = {}
        self.contacts: dict[str, dict] = {}
        self.receipts: Counter = Counter()  # event id -> times it arrived in an accepted batch
        self.arrivals: list[str] = []  # event ids in order of first arrival
        self.arrived_at: dict[str, float] = {}  # event id -> time.time() of first arrival
        self.requests: list[dict] = []  # {"path", "headers", "size"} of every request
        self.batches: list[list[str]] = []  # the event ids of every accepted batch, as received
        self._actions: list[tuple] = []  # injected behaviour for the next requests, in order
        self._outage: int | None = None
        self._rejected_customers: dict[str, int] = {}
        super().__init__()

    # -- failure injection ------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self._actions.extend([("status", status, headers)] * times)

    def hang(self, seconds: float, *, times: int = 1) -> None:
        with self.lock:
            self._actions.extend([("hang", seconds)] * times)

    def slow_next(self, seconds: float) -> None:
        with self.lock:
            self._actions.append(("slow", seconds))

    def down(self, status: int = 503) -> None:
        with self.lock:
            self._outage = status

    def up(self) -> None:
        with self.lock:
            self._outage = None

    def reject_customer(self, customer_id, *, times: int = 1) -> None:
        """Fail this customer's events (each one, in any batch) for the next `times` batches."""
        with self.lock:
            self._rejected_customers[str(customer_id)] = times

    # -- what the CRM holds -----------------------------------------------------------------

    def state(self) -> dict:
        """What a user of the CRM sees: the event records and the contacts (no delivery counts)."""
        with self.lock:
            return {"records": json.loads(json.dumps(self.records)), "contacts": json.loads(json.dumps(self.contacts))}

    def arrivals_of(self, customer_id) -> list[str]:
        with self.lock:
            return [i for i in self.arrivals if (self.records[i].get("customer") or {}).get("id") == customer_id]

    def batch_requests(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == BATCH_PATH]

    def _store(self, events: list[dict]) -> list[dict]:
        results = []
        with self.lock:
            rejected = {c for c, left in self._rejected_customers.items() if left > 0}
            for customer in rejected:
                self._rejected_customers[customer] -= 1
            self.batches.append([str(event["id"]) for event in events])
            for event in events:
                event_id, customer = str(event["id"]), event.get("customer") or {}
                if str(customer.get("id")) in rejected:
                    results.append({"id": event["id"], "status": "error", "error": "contact locked", "retryable": True})
                    continue
                if event_id not in self.records:
                    self.arrivals.append(event_id)
                    self.arrived_at[event_id] = time.time()
                self.records[event_id] = {k: event.get(k) for k in ("type", "occurred_at", "customer", "payload")}
                self.receipts[event_id] += 1
                if customer.get("id") is not None:
                    self.contacts[str(customer["id"])] = {"customer": customer, "card": event.get("card")}
                results.append({"id": event["id"], "status": "ok"})
        return results

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def do_POST(self):
                body = self.read_body()
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "size": len(body)})
                    action = fake._actions.pop(0) if fake._actions else None
                    outage = fake._outage
                if self.path != BATCH_PATH:
                    return self.send_json(404, {"error": "not_found"})
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self.send_json(401, {"error": "unauthorized"})
                if action and action[0] == "hang":
                    time.sleep(action[1])
                    self.close_connection = True
                    return None
                if action and action[0] == "status":
                    return self.send_json(action[1], {"error": "injected"}, action[2])
                if outage:
                    return self.send_json(outage, {"error": "unavailable"})
                events = self._events(body)
                if events is None:
                    return None
                results = fake._store(events)
                if action and action[0] == "slow":
                    time.sleep(action[1])
                if fake.latency:
                    time.sleep(fake.latency)
                return self.send_json(200, {"results": results})

            def _events(self, body: bytes) -> list[dict] | None:
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    self.send_json(415, {"error": "json_required"})
                    return None
                try:
                    events = json.loads(body)["events"]
                except (ValueError, KeyError, TypeError):
                    events = None
                if not isinstance(events, list) or not all(isinstance(e, dict) and "id" in e for e in events):
                    self.send_json(400, {"error": "malformed"})
                    return None
                if not 1 <= len(events) <= MAX_BATCH:
                    self.send_json(400, {"error": "batch_too_large", "max": MAX_BATCH})
                    return None
                return events

        return Handler
