"""A local fake of the Klaviyo API calls the connector makes, on a real socket.

Built from the reference (wallet-crm-vendors.md section 6, revision 2026-07-15), checking requests as
Klaviyo documents them: `Authorization: Klaviyo-API-Key <private key>` (else 401), a dated `revision`
header (else 400), JSON:API bodies sent as `application/vnd.api+json` (else 415), each body's `type`
and required members, and the documented limits (profile payload 100 KB, metric name < 128
characters, event time after 1990 and at most a year ahead, 1,000 profiles per subscribe call, 100 per
unsubscribe call). Errors come in Klaviyo's `{"errors": [{"id", "status", "code", "title", "detail"}]}`.

Its state behaves like Klaviyo's: `profile-import` creates (201) or updates (200) the profile its
identifiers name, and answers 409 duplicate_profile when they name two different profiles; an event
is recorded once per (profile, metric, unique_id) however often it is sent; subscribe / unsubscribe
set a channel's marketing consent and list membership; a deletion job removes the profile.

Failures to inject: `fail(status, times, retry_after, detail)`, `down(status)` / `up()`,
`hang(seconds, times)` (processes the request, then answers too late: a timed-out call that Klaviyo
did carry out), `scopes` (a 403 for an endpoint whose scope the key lacks).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from tests.fake_http import JsonRequestHandler, LocalServer

JSON_API = "application/vnd.api+json"
ALL_SCOPES = frozenset({"profiles:read", "profiles:write", "events:write", "lists:write", "subscriptions:write",
                        "data-privacy:write"})
ROUTES = {  # (method, path) -> (handler name, scopes the key needs)
    ("POST", "/api/profile-import"): ("profile_import", {"profiles:write"}),
    ("POST", "/api/events"): ("create_event", {"events:write"}),
    ("POST", "/api/profile-subscription-bulk-create-jobs"): (
        "subscribe", {"lists:write", "profiles:write", "subscriptions:write"}),
    ("POST", "/api/profile-subscription-bulk-delete-jobs"): (
        "unsubscribe", {"lists:write", "profiles:write", "subscriptions:write"}),
    ("GET", "/api/profiles"): ("get_profiles", {"profiles:read"}),
    ("POST", "/api/data-privacy-deletion-jobs"): ("delete_profile", {"data-privacy:write"}),
}
IDENTIFIERS = ("email", "phone_number", "external_id")
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_FILTER = re.compile(r'^equals\(external_id,"([^"]*)"\)$')


class Refusal(Exception):
    def __init__(self, status: int, code: str, detail: str, meta: dict | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.meta = status, code, detail, meta or {}


class FakeKlaviyo(LocalServer):
    poll_interval = 0.05
    block_on_close = False  # a hanging handler must not hold up stop()

    def __init__(self, *, api_key: str, lists=("Xy7Pq2",)):
        self.api_key, self.scopes, self.lists = api_key, set(ALL_SCOPES), {list_id: set() for list_id in lists}
        self.profiles: dict[str, dict] = {}  # Klaviyo id -> {"attributes", "properties", "subscriptions"}
        self.events: list[dict] = []  # recorded events, in the order Klaviyo recorded them
        self.deleted: list[str] = []
        self.requests: list[dict] = []  # every request: method, path, query, headers, body
        self.failures: list[dict] = []  # injected failures, consumed in order (see fail and hang)
        self.outage: int | None = None
        super().__init__()

    # -- failures -------------------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None, detail: str = "",
             path: str | None = None, after: int = 0) -> None:
        """Answer the next `times` requests (to `path`, if given; after letting `after` through) with `status`."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.failures.extend({"status": status, "headers": headers, "detail": detail, "path": path,
                                  "after": after if i == 0 else 0} for i in range(times))

    def hang(self, seconds: float, *, times: int = 1, path: str | None = None, after: int = 0) -> None:
        with self.lock:
            self.failures.extend({"hang": seconds, "headers": {}, "path": path, "after": after if i == 0 else 0}
                                 for i in range(times))

    def down(self, status: int = 503) -> None:
        self.outage = status

    def up(self) -> None:
        self.outage = None

    # -- reading the state ----------------------------------------------------------------------------

    def profile(self, **identifier) -> dict | None:
        (name, value), = identifier.items()
        return next((p for p in self.profiles.values() if p["attributes"].get(name) == value), None)

    def events_of(self, profile: dict) -> list[dict]:
        return [e for e in self.events if e["profile_id"] == profile["id"]]

    def calls(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    # -- the API --------------------------------------------------------------------------------------

    def profile_import(self, body: dict, query: dict) -> tuple[int, dict | None]:
        data = _resource(body, "profile")
        attributes = dict(data.get("attributes") or {})
        if len(json.dumps(body)) > 100 * 1024:
            raise Refusal(413, "too_large", "The maximum allowed payload size is 100KB.")
        found = self._find(attributes, required=True)
        profile = found or self._new_profile()
        properties = attributes.pop("properties", None) or {}
        for name, value in attributes.items():
            _set(profile["attributes"], name, value)
        for name, value in properties.items():
            _set(profile["properties"], name, value)
        return (200 if found else 201), {"data": {"type": "profile", "id": profile["id"],
                                                  "attributes": dict(profile["attributes"])}}

    def create_event(self, body: dict, query: dict) -> tuple[int, dict | None]:
        attributes = _resource(body, "event").get("attributes") or {}
        if not isinstance(attributes.get("properties"), dict):
            raise Refusal(400, "invalid", "'properties' is a required object.")
        metric = _resource((attributes.get("metric") or {}), "metric").get("attributes") or {}
        name = metric.get("name")
        if not isinstance(name, str) or not name or len(name) >= 128:
            raise Refusal(400, "invalid", "The metric name must be under 128 characters.")
        who = _resource((attributes.get("profile") or {}), "profile").get("attributes") or {}
        _check_time(attributes.get("time"))
        if "value" in attributes and not isinstance(attributes["value"], int | float):
            raise Refusal(400, "invalid", "'value' must be a number.")
        if "value_currency" in attributes and not re.fullmatch(r"[A-Z]{3}", str(attributes["value_currency"])):
            raise Refusal(400, "invalid", "'value_currency' must be an ISO 4217 code.")
        profile = self._find(who, required=True, first_match=True) or self._new_profile(who)
        unique_id = attributes.get("unique_id") or attributes.get("time")
        if not any(e["profile_id"] == profile["id"] and e["metric"] == name and e["unique_id"] == unique_id
                   for e in self.events):  # Klaviyo records only the first event with a unique_id
            self.events.append({"profile_id": profile["id"], "metric": name, "unique_id": unique_id,
                                "time": attributes.get("time"), "value": attributes.get("value"),
                                "value_currency": attributes.get("value_currency"),
                                "properties": attributes["properties"]})
        return 202, None

    def subscribe(self, body: dict, query: dict) -> tuple[int, dict | None]:
        return self._subscriptions(body, "profile-subscription-bulk-create-job", "SUBSCRIBED", limit=1000)

    def unsubscribe(self, body: dict, query: dict) -> tuple[int, dict | None]:
        return self._subscriptions(body, "profile-subscription-bulk-delete-job", "UNSUBSCRIBED", limit=100)

    def get_profiles(self, body: dict, query: dict) -> tuple[int, dict | None]:
        match = _FILTER.match((query.get("filter") or [""])[0])
        if not match:
            raise Refusal(400, "invalid", "This fake supports filter=equals(external_id,\"...\") only.")
        found = [p for p in self.profiles.values() if p["attributes"].get("external_id") == match.group(1)]
        return 200, {"data": [{"type": "profile", "id": p["id"], "attributes": dict(p["attributes"])} for p in found],
                     "links": {"self": "/api/profiles", "next": None, "prev": None}}

    def delete_profile(self, body: dict, query: dict) -> tuple[int, dict | None]:
        attributes = _resource(body, "data-privacy-deletion-job").get("attributes") or {}
        target = _resource((attributes.get("profile") or {}), "profile")
        named = [n for n in ("email", "phone_number") if (target.get("attributes") or {}).get(n)]
        if bool(target.get("id")) + len(named) != 1:
            raise Refusal(400, "invalid", "Give exactly one of id, email or phone_number.")
        profile = self.profiles.get(target["id"]) if target.get("id") else self._find(target["attributes"])
        if profile is not None:
            del self.profiles[profile["id"]]
            self.deleted.append(profile["id"])
        return 202, None

    # -- helpers --------------------------------------------------------------------------------------

    def _subscriptions(self, body: dict, job_type: str, consent: str, *, limit: int) -> tuple[int, None]:
        data = _resource(body, job_type)
        profiles = (((data.get("attributes") or {}).get("profiles") or {}).get("data")) or []
        if not profiles or len(profiles) > limit:
            raise Refusal(400, "invalid", f"Send 1 to {limit} profiles per call.")
        list_id = ((((data.get("relationships") or {}).get("list") or {}).get("data")) or {}).get("id")
        if list_id is not None and list_id not in self.lists:
            raise Refusal(404, "not_found", f"There is no list {list_id}.")
        for entry in profiles:
            if not isinstance(entry, dict) or entry.get("type") != "profile":
                raise Refusal(400, "invalid", "Each profiles.data entry must be of type 'profile'.")
            attributes = entry.get("attributes") or {}
            channels = attributes.get("subscriptions") or {}
            for channel, kinds in channels.items():
                if (kinds.get("marketing") or {}).get("consent") != consent:
                    raise Refusal(400, "invalid", f"consent must be {consent}.")
                needs = {"email": "email", "sms": "phone_number"}.get(channel)
                if needs is None or not attributes.get(needs):
                    raise Refusal(400, "invalid", f"The {channel} channel needs a {needs or 'known channel'}.")
            profile = self._find(attributes, required=True, first_match=True) or self._new_profile(attributes)
            for channel in channels:
                profile["subscriptions"][channel] = consent
            if list_id is not None:
                (self.lists[list_id].add if consent == "SUBSCRIBED" else self.lists[list_id].discard)(profile["id"])
        return 202, None

    def _new_profile(self, identifiers: dict | None = None) -> dict:
        profile = {"id": uuid.uuid4().hex[:26].upper(), "attributes": {}, "properties": {}, "subscriptions": {}}
        for name in IDENTIFIERS:
            if (identifiers or {}).get(name):
                profile["attributes"][name] = identifiers[name]
        self.profiles[profile["id"]] = profile
        return profile

    def _find(self, attributes: dict, *, required: bool = False, first_match: bool = False) -> dict | None:
        given = {n: attributes[n] for n in IDENTIFIERS if attributes.get(n)}
        if required and not given:
            raise Refusal(400, "invalid", "A profile needs an email, phone_number or external_id.")
        if "email" in given and not _EMAIL.match(given["email"]):
            raise Refusal(400, "invalid", f"Invalid email address: {given['email']!r}.")
        if "phone_number" in given and not _E164.match(given["phone_number"]):
            raise Refusal(400, "invalid", "Invalid phone number; use E.164.")
        matches = {p["id"]: p for n, v in given.items() for p in self.profiles.values() if p["attributes"].get(n) == v}
        if len(matches) > 1 and not first_match:
            raise Refusal(409, "duplicate_profile", "A profile already exists with one of these identifiers.",
                          {"duplicate_profile_id": sorted(matches)[0]})
        return next(iter(matches.values()), None)

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            content_type = JSON_API

            def do_GET(self):
                self._handle()

            def do_POST(self):
                self._handle()

            def _handle(self):
                parts = urlsplit(self.path)
                raw = self.read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with fake.lock:
                    fake.requests.append({"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                                          "headers": headers, "body": body})
                    failure = fake._next_failure(parts.path)
                    try:
                        status, answer = fake._answer(self.command, parts.path, headers, body, parts.query, failure)
                        extra = {}
                    except Refusal as refusal:
                        status, answer = refusal.status, _errors(refusal)
                        extra = failure["headers"] if failure and "status" in failure else {}
                if failure and "hang" in failure:
                    time.sleep(failure["hang"])  # processed, but the answer comes after the caller gave up
                self.send_json(status, answer, extra)  # the caller may have timed out meanwhile: send_raw copes

        return Handler

    def _next_failure(self, path: str) -> dict | None:
        for index, failure in enumerate(self.failures):
            if failure["path"] in (None, path):
                if failure["after"] > 0:
                    failure["after"] -= 1
                    return None
                return self.failures.pop(index)
        return None

    def _answer(self, method, path, headers, body, query, failure) -> tuple[int, dict | None]:
        if headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            raise Refusal(401, "not_authenticated", "Incorrect authentication credentials.")
        if not _REVISION.match(headers.get("revision") or ""):
            raise Refusal(400, "invalid", "The revision header is required: YYYY-MM-DD[.suffix].")
        if JSON_API not in (headers.get("accept") or "") and "*/*" not in (headers.get("accept") or ""):
            raise Refusal(406, "not_acceptable", f"Accept {JSON_API}.")
        if method == "POST" and (headers.get("content-type") or "").split(";")[0].strip() != JSON_API:
            raise Refusal(415, "unsupported_media_type", f"Send {JSON_API}.")
        if self.outage:
            raise Refusal(self.outage, "error", "Klaviyo is down (injected).")
        if failure and "status" in failure:
            status, detail = failure["status"], failure["detail"]
            code = "throttled" if status == 429 else "error"
            raise Refusal(status, code, detail or ("Request was throttled. Expected available in 1 seconds."
                                                   if status == 429 else "Injected failure."))
        route = ROUTES.get((method, path))
        if route is None:
            raise Refusal(404, "not_found", f"No route {method} {path}.")
        handler, scopes = route
        if not scopes <= self.scopes:
            raise Refusal(403, "permission_denied", f"Missing scopes: {', '.join(sorted(scopes - self.scopes))}.")
        if method == "POST" and not isinstance(body, dict):
            raise Refusal(400, "invalid", "The body is not a JSON:API document.")
        return getattr(self, handler)(body, parse_qs(query))


def _resource(document: dict, resource_type: str) -> dict:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or data.get("type") != resource_type:
        raise Refusal(400, "invalid", f"data.type must be {resource_type!r}.")
    return data


def _set(target: dict, name: str, value) -> None:
    if value is None:
        target.pop(name, None)  # null clears a field; a missing one is left as it was
    else:
        target[name] = value


def _check_time(value) -> None:
    if value is None:
        return
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise Refusal(400, "invalid", f"'time' is not ISO 8601: {value!r}.") from None
    if moment.tzinfo is None or moment.year <= 1990 or moment > dt.datetime.now(dt.UTC) + dt.timedelta(days=365):
        raise Refusal(400, "invalid", "'time' must have an offset, be after 1990 and at most a year ahead.")


def _errors(refusal: Refusal) -> dict:
    error = {"id": str(uuid.uuid4()), "status": refusal.status, "code": refusal.code,
             "title": refusal.detail, "detail": refusal.detail, "source": {"pointer": "/data/"}}
    if refusal.meta:
        error["meta"] = refusal.meta
    return {"errors": [error]}
