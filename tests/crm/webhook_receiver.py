"""A merchant's system receiving Tessera's CRM webhooks, on a real socket, written from README.md alone.

It does what the README asks of a consumer: verify the Standard Webhooks signature over the raw body
(core.standard_webhooks, as any spec library would) and answer 401 if it fails, refuse bodies that
break the documented shape (at most 100 events, every documented key), and keep exactly-once state
by remembering event ids. Per customer it keeps a profile with the latest card snapshot and notes any
event that arrives after a later one of the same customer.

Scripted trouble for the next requests: any status (with Retry-After), "record then fail" (a consumer
that committed but crashed before answering, so the resend is a true duplicate), and hanging longer
than the client's timeout.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from core import standard_webhooks
from tests.fake_http import JsonRequestHandler, LocalServer

PATH = "/hooks/tessera"
MAX_EVENTS = 100
EVENT_KEYS = {"id", "type", "schema_version", "occurred_at", "merchant_id", "data", "customer", "card"}
CUSTOMER_KEYS = {"id", "erased", "email", "phone", "first_name", "last_name", "locale", "time_zone", "consents"}
CARD_KEYS = {"id", "number", "program", "balance", "lifetime_points", "tier", "status"}


@dataclass
class Trouble:
    status: int = 500
    headers: dict = field(default_factory=dict)
    record_first: bool = False  # apply the events, then answer `status` anyway
    hang_seconds: float = 0.0  # apply the events, then answer late


@dataclass
class Received:
    webhook_id: str
    headers: dict
    body: bytes
    status: int  # 0 until answered


class WebhookReceiver(LocalServer):
    def __init__(self, *, secret: str):
        self.secret = secret
        self.events: dict[str, dict] = {}  # event id -> the event, first copy kept
        self.order: list[str] = []  # event ids in the order they were first applied
        self.profiles: dict[int, dict] = {}  # customer id -> latest customer + card
        self.duplicates = 0
        self.out_of_order: list[str] = []
        self.requests: list[Received] = []
        self.trouble: list[Trouble] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"{super().url}{PATH}"

    def fail(self, status: int, *, times: int = 1, after: int = 0, retry_after: str | None = None,
             record_first=False, headers: dict | None = None) -> None:
        """Answer `status` to `times` requests, after answering `after` requests normally."""
        headers = {**(headers or {}), **({"Retry-After": retry_after} if retry_after is not None else {})}
        with self.lock:
            self.trouble += [Trouble(200) for _ in range(after)]
            self.trouble += [Trouble(status, headers, record_first) for _ in range(times)]

    def hang(self, seconds: float, *, times: int = 1) -> None:
        with self.lock:
            self.trouble += [Trouble(200, hang_seconds=seconds) for _ in range(times)]

    def heal(self) -> None:
        with self.lock:
            self.trouble.clear()

    def batch_sizes(self) -> list[int]:
        return [len(json.loads(r.body)["events"]) for r in self.requests if r.status == 200]

    def events_of(self, customer_id: int) -> list[str]:
        return [i for i in self.order if (self.events[i]["customer"] or {}).get("id") == customer_id]

    def apply(self, events: list[dict]) -> None:
        """The consumer's business: exactly once per event id, profiles upserted from the snapshot."""
        for event in events:
            if event["id"] in self.events:
                self.duplicates += 1
                continue
            self.events[event["id"]] = event
            self.order.append(event["id"])
            customer = event["customer"]
            if customer is None:
                continue
            profile = self.profiles.setdefault(customer["id"], {})
            if _number(event["id"]) < _number(profile.get("last_event", "evt_0")):
                self.out_of_order.append(event["id"])
            profile.update(last_event=event["id"], customer=customer, card=event["card"])

    def _handler_class(self):
        receiver = self

        class Handler(JsonRequestHandler):
            def _answer(self, status: int, body: dict, headers: dict | None = None) -> int:
                self.send_json(status, body, headers)
                return status

            def do_POST(self):
                raw = self.read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                received = Received(headers.get("webhook-id", ""), headers, raw, status=0)
                with receiver.lock:
                    receiver.requests.append(received)  # in arrival order, even if answered late
                received.status = self._handle(raw, headers)

            def _handle(self, raw: bytes, headers: dict) -> int:
                if self.path != PATH:
                    return self._answer(404, {"error": f"no route {self.path}"})
                try:
                    standard_webhooks.verify(receiver.secret, headers, raw)
                except standard_webhooks.SignatureInvalid as invalid:
                    return self._answer(401, {"error": invalid.reason})
                if headers.get("content-type") != "application/json":
                    return self._answer(415, {"error": "expected application/json"})
                problem, events = _check_body(raw, headers["webhook-id"])
                if problem:
                    return self._answer(413 if "at most" in problem else 422, {"error": problem})
                with receiver.lock:
                    trouble = receiver.trouble.pop(0) if receiver.trouble else None
                    if trouble is None or trouble.status == 200 or trouble.record_first:
                        receiver.apply(events)
                if trouble and trouble.hang_seconds:
                    time.sleep(trouble.hang_seconds)
                if trouble and trouble.status != 200:
                    return self._answer(trouble.status, {"error": "scripted failure"}, trouble.headers)
                return self._answer(200, {"received": len(events)})

        return Handler


def _check_body(raw: bytes, webhook_id: str) -> tuple[str, list]:
    """The documented shape, checked strictly; returns (problem, events)."""
    try:
        document = json.loads(raw)
    except ValueError:
        return "body is not JSON", []
    if set(document) != {"batch_id", "events"} or document["batch_id"] != webhook_id:
        return "body must be {batch_id, events} with batch_id == webhook-id", []
    events = document["events"]
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        return f"events must hold 1 to at most {MAX_EVENTS} events", []
    for event in events:
        if set(event) != EVENT_KEYS or not str(event["id"]).startswith("evt_"):
            return f"event keys {sorted(event)}", []
        customer, card = event["customer"], event["card"]
        if customer is not None and set(customer) != (
            {"id", "erased"} if customer.get("erased") else CUSTOMER_KEYS
        ):
            return f"customer keys {sorted(customer)}", []
        if card is not None and set(card) != CARD_KEYS:
            return f"card keys {sorted(card)}", []
    return "", events


def _number(event_id: str) -> int:
    return int(event_id.removeprefix("evt_"))
