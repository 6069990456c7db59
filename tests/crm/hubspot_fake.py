"""A local fake of the HubSpot API calls the connector makes, on a real socket.

Built from the reference (wallet-crm-vendors.md 4): Bearer private-app token (401 otherwise);
`POST /crm/v3/objects/contacts/batch/upsert` with `idProperty=email`, string property values, only
properties that exist in the account, at most 100 inputs, two inputs for one contact refusing the whole
batch; an invalid email refuses the whole batch with 400 (legacy behaviour, vendors-and-reliability.md 7)
or, with `partial=True`, answers 207 with `errors[]`; `POST /events/v3/send/batch` (204) for defined
custom events `pe{hub id}_{name}`, keeping the first occurrence of each `uuid`; `GET
/crm/v3/objects/contacts/{id}?properties=email`. Errors use HubSpot's `{"status": "error", ...}` shape.
Switches answer 429 (with or without Retry-After), 5xx, or stall past the client's timeout (a stalled
request changes nothing).
"""
from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.fake_http import JsonRequestHandler, LocalServer

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
EVENTS_PATH = "/events/v3/send/batch"
_CONTACT = re.compile(r"^/crm/v3/objects/contacts/(\d+)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BATCH_LIMIT = 100
STANDARD_PROPERTIES = {"email", "firstname", "lastname", "phone", "hs_email_optout"}
TESSERA_PROPERTIES = {"tessera_card_number", "tessera_points", "tessera_lifetime_points", "tessera_tier",
                      "tessera_email_opt_in"}
EVENT_DEFINITIONS = {  # as the README tells the merchant to define them
    "tessera_purchase": {"tessera_event_id", "card_number", "purchase_id", "external_id", "store_id", "amount",
                         "currency", "points_earned"},
    "tessera_refund": {"tessera_event_id", "card_number", "purchase_id", "external_id", "refund_amount",
                       "points_reversed"},
    "tessera_redemption": {"tessera_event_id", "card_number", "redemption_id", "reward_id", "reward_name", "points"},
    "tessera_redemption_cancelled": {"tessera_event_id", "card_number", "redemption_id", "points_returned"},
    "tessera_coupon_used": {"tessera_event_id", "card_number", "redemption_id", "reward_id", "points"},
}


class Refused(Exception):
    def __init__(self, status: int, category: str, message: str, **extra):
        super().__init__(message)
        self.status, self.body = status, {"status": "error", "category": category, "message": message, **extra}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: dict | list | None
    status: int = 0

    @property
    def inputs(self) -> list:
        return (self.body or {}).get("inputs") or [] if isinstance(self.body, dict) else []


@dataclass
class Injected:
    status: int = 0
    headers: dict = field(default_factory=dict)
    body: dict | None = None
    stall: float = 0.0


class FakeHubSpot(LocalServer):
    poll_interval = 0.05

    def __init__(self, *, access_token: str, hub_id: str, partial: bool = False):
        self.access_token, self.hub_id, self.partial = access_token, hub_id, partial
        self.contacts: dict[str, dict] = {}  # lower-case email -> {"id", "properties"}
        self.occurrences: list[dict] = []  # accepted custom events, first per uuid, in arrival order
        self.duplicate_occurrences = 0
        self.requests: list[Recorded] = []
        self.injected: list[Injected] = []
        self.down = False
        self.known_properties = STANDARD_PROPERTIES | TESSERA_PROPERTIES
        self._ids = iter(range(901, 10**9))
        super().__init__()

    # Switches -------------------------------------------------------------------------------
    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None, policy: str = "") -> None:
        """The next `times` requests answer `status` (429 bodies name the rate-limit `policy`)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"status": "error", "message": "injected", "correlationId": str(uuid.uuid4()),
                "category": "RATE_LIMITS" if status == 429 else "ERROR"}
        if status == 429:
            body.update(errorType="RATE_LIMIT", policyName=policy or "TEN_SECONDLY_ROLLING", groupName="publicapi:x",
                        message=f"You have reached your {(policy or 'ten_secondly_rolling').lower()} limit.")
        with self.lock:
            self.injected.extend(Injected(status=status, headers=headers, body=body) for _ in range(times))

    def stall(self, seconds: float, *, times: int = 1) -> None:
        with self.lock:
            self.injected.extend(Injected(stall=seconds) for _ in range(times))

    def add_contact(self, email: str, **properties) -> str:
        with self.lock:
            return self._write_contact(email, properties)["id"]

    # Reads for tests --------------------------------------------------------------------------
    def contact(self, email: str) -> dict:
        return self.contacts[email.lower()]["properties"]

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # Behaviour --------------------------------------------------------------------------------
    def _write_contact(self, email: str, properties: dict) -> dict:
        key = email.lower()
        record = self.contacts.get(key)
        if record is None:
            record = self.contacts[key] = {"id": str(next(self._ids)), "properties": {"email": key}}
        record["properties"].update(properties)
        return record

    def _upsert(self, body) -> tuple[int, dict]:
        inputs = _inputs(body)
        seen, invalid = set(), []
        for item in inputs:
            if item.get("idProperty") != "email" or not isinstance(item.get("id"), str):
                raise Refused(400, "VALIDATION_ERROR", "Each input needs an id and idProperty email.")
            properties = item.get("properties")
            if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
                raise Refused(400, "VALIDATION_ERROR", "Property values must be strings.")
            unknown = sorted(set(properties) - self.known_properties)
            if unknown:
                raise Refused(400, "VALIDATION_ERROR", f'Property "{unknown[0]}" does not exist')
            if item["id"].lower() in seen:
                raise Refused(400, "VALIDATION_ERROR", "Duplicate inputs resolve to the same contact.")
            seen.add(item["id"].lower())
            if not _EMAIL.match(item["id"]):
                invalid.append(item["id"])
        if invalid and not self.partial:
            raise Refused(400, "VALIDATION_ERROR", f"Property values were not valid: INVALID_EMAIL {invalid[0]}")
        results = [self._write_contact(i["id"], i["properties"]) for i in inputs if i["id"] not in invalid]
        answer = {"status": "COMPLETE", "results": [{**r, "new": False} for r in results]}
        if not invalid:
            return 200, answer
        errors = [{"status": "error", "category": "VALIDATION_ERROR", "message": f"Invalid email {email}",
                   "context": {"ids": [email]}} for email in invalid]
        return 207, {**answer, "errors": errors, "numErrors": len(errors)}

    def _send_events(self, body) -> tuple[int, dict | None]:
        inputs = _inputs(body)
        for item in inputs:
            name = str(item.get("eventName") or "")
            prefix = f"pe{self.hub_id}_"
            definition = EVENT_DEFINITIONS.get(name[len(prefix):]) if name.startswith(prefix) else None
            if definition is None:
                raise Refused(400, "VALIDATION_ERROR", f"Event {name!r} is not defined in this account.")
            if not any(item.get(k) for k in ("email", "objectId", "utk")):
                raise Refused(400, "VALIDATION_ERROR", "One of email, objectId or utk is required.")
            properties = item.get("properties")
            if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
                raise Refused(400, "VALIDATION_ERROR", "Event properties must be strings.")
            unknown = sorted(set(properties) - definition)
            if unknown:
                raise Refused(400, "VALIDATION_ERROR", f"Unknown event properties {unknown}")
            if not item.get("uuid"):
                raise Refused(400, "VALIDATION_ERROR", "This fake insists on a uuid: the connector must send one.")
        known = {o["uuid"] for o in self.occurrences}
        for item in inputs:
            if item["uuid"] in known:
                self.duplicate_occurrences += 1
            else:
                known.add(item["uuid"])
                self.occurrences.append(item)
        return 204, None

    def _get_contact(self, contact_id: str, query: dict) -> tuple[int, dict]:
        if query.get("properties") != ["email"]:
            raise Refused(400, "VALIDATION_ERROR", "Ask for properties=email.")
        for record in self.contacts.values():
            if record["id"] == contact_id:
                return 200, {"id": contact_id, "properties": {"email": record["properties"]["email"],
                                                              "hs_object_id": contact_id}}
        raise Refused(404, "OBJECT_NOT_FOUND", f"resource not found: contact {contact_id}")

    def _route(self, method: str, path: str, query: dict, headers: dict, body) -> tuple[int, dict | None]:
        if headers.get("authorization") != f"Bearer {self.access_token}":
            raise Refused(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if method == "POST" and not headers.get("content-type", "").startswith("application/json"):
            raise Refused(415, "UNSUPPORTED_MEDIA_TYPE", "Send JSON.")
        if method == "POST" and path == UPSERT_PATH:
            return self._upsert(body)
        if method == "POST" and path == EVENTS_PATH:
            return self._send_events(body)
        match = _CONTACT.match(path)
        if method == "GET" and match:
            return self._get_contact(match.group(1), query)
        raise Refused(404, "OBJECT_NOT_FOUND", f"No route {method} {path}.")

    def _handle(self, method: str, raw_path: str, headers: dict, raw: bytes) -> tuple[int, dict | None, dict]:
        parts = urlsplit(raw_path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Recorded(method, parts.path, parse_qs(parts.query), headers, body)
        with self.lock:
            self.requests.append(record)
            injected = self.injected.pop(0) if self.injected else None
        if injected and injected.stall:
            time.sleep(injected.stall)
            status, answer, extra = 504, {"status": "error", "category": "TIMEOUT", "message": "stalled"}, {}
        else:
            with self.lock:
                status, answer, extra = self._answer(injected, method, parts, headers, body)
        record.status = status
        return status, answer, extra

    def _answer(self, injected, method, parts, headers, body) -> tuple[int, dict | None, dict]:
        if self.down:
            return 500, {"status": "error", "category": "INTERNAL_ERROR", "message": "down"}, {}
        if injected:
            return injected.status, injected.body, injected.headers
        try:
            status, answer = self._route(method, parts.path, parse_qs(parts.query), headers, body)
        except Refused as refused:
            status, answer = refused.status, {**refused.body, "correlationId": str(uuid.uuid4())}
        return status, answer, {}

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            content_type = "application/json;charset=utf-8"
            default_headers = {"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "189",
                               "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}

            def _serve(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, extra = fake._handle(self.command, self.path, headers, self.read_body())
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_raw(status, data, extra, self.content_type if data else None)  # a 204 has no type

            do_GET = do_POST = _serve

        return Handler


def _inputs(body) -> list[dict]:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise Refused(400, "VALIDATION_ERROR", "The body needs a non-empty inputs array.")
    if len(inputs) > BATCH_LIMIT:
        raise Refused(400, "VALIDATION_ERROR", f"At most {BATCH_LIMIT} inputs per batch; got {len(inputs)}.")
    return inputs
