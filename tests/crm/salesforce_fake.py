"""A local fake Salesforce org on a real socket: the OAuth token endpoint and sObject Collections upsert.

Built from the reference (wallet-crm-vendors.md section 5):
- `POST /services/oauth2/token`, form-encoded. JWT bearer: the RS256 assertion is verified with the
  connected app's certificate key, iss = consumer key, sub = username, aud = the login URL, exp at
  most 3 minutes ahead. Client credentials: client_id and client_secret. Refusals are 400 with
  `{"error", "error_description"}`. Answers `{"access_token", "instance_url", "id", "token_type"}`.
- `PATCH /services/data/vNN.0/composite/sobjects/{SObject}/{ExternalIdField}` with a Bearer token (401
  INVALID_SESSION_ID otherwise), JSON, `allOrNone` in the body, at most 200 records (400
  EXCEEDED_ID_LIMIT), each with `attributes.type` equal to the URI's object and no `Id`. Unknown
  object or external id field: 404 NOT_FOUND. Then per record, in order: an UpsertResult, with errors
  for an unknown field (INVALID_FIELD), a bad email, a lookup to a Contact that does not exist, a
  missing required field on create, or an external id given twice in one call (DUPLICATE_EXTERNAL_ID).
- Switches: answer the next API calls with any status (Retry-After, Salesforce's error array, e.g.
  403 REQUEST_LIMIT_EXCEEDED), stay down, hang longer than the client's timeout (then still write,
  as a real server may), fail given records, and expire every session.
"""
from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections import Counter
from urllib.parse import parse_qs

import jwt

from tests.fake_http import JsonRequestHandler, LocalServer

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIMIT = 200
_COLLECTION = re.compile(r"^/services/data/v(\d+)\.0/composite/sobjects/([A-Za-z0-9_]+)/([A-Za-z0-9_]+)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CONTACT_FIELDS = {
    "FirstName", "LastName", "Email", "Phone", "HasOptedOutOfEmail", "Tessera_Customer_Id__c", "Loyalty_Points__c",
    "Loyalty_Lifetime_Points__c", "Loyalty_Tier__c", "Loyalty_Card_Number__c", "Loyalty_Program__c",
    "Loyalty_Card_Status__c",
}
EVENT_FIELDS = {
    "Tessera_Event_Id__c", "Contact__r", "Event_Type__c", "Occurred_At__c", "Points__c", "Amount__c", "Currency__c",
    "Card_Number__c", "Details__c",
}


class FakeSalesforce(LocalServer):
    poll_interval = 0.05  # stop() waits for it, and every test stops one fake

    def __init__(self, *, consumer_key: str, username: str = "", public_key_pem: str = "", client_secret: str = ""):
        self.consumer_key, self.username = consumer_key, username
        self.public_key_pem, self.client_secret = public_key_pem, client_secret
        self.schema = {"Contact": CONTACT_FIELDS, "Tessera_Loyalty_Event__c": EVENT_FIELDS}
        self.external_ids = {"Contact": "Tessera_Customer_Id__c", "Tessera_Loyalty_Event__c": "Tessera_Event_Id__c"}
        self.required_on_create = {"Contact": {"LastName"}}
        self.lookups = {"Contact__r": "Contact"}
        self.records: dict[str, dict[str, dict]] = {name: {} for name in self.schema}  # object -> ext id -> fields
        self.writes: Counter = Counter()  # (object, ext id) -> successful upserts
        self.created: list[tuple[str, str]] = []  # (object, ext id) in order of creation
        self.tokens: set[str] = set()
        self.token_requests: list[dict] = []  # the form fields (and the decoded assertion's claims)
        self.api_calls: list[dict] = []  # method, path, headers, body, client port
        self.fail_next: list[tuple[int, list, dict]] = []  # (status, error array, headers)
        self.record_failures: dict[str, list[tuple[str, str]]] = {}  # ext id -> [(statusCode, message)]
        self.hang_next: list[float] = []
        self.down_status: int | None = None
        self._ids = itertools.count(1)
        super().__init__()

    # -- switches ------------------------------------------------------------------------------------

    def fail(self, status: int, error_code: str = "", *, retry_after: str | None = None, times: int = 1) -> None:
        body = [{"message": f"injected {status}", "errorCode": error_code or f"HTTP_{status}"}]
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.fail_next.extend([(status, body, headers)] * times)

    def go_down(self, status: int = 503) -> None:
        self.down_status = status

    def come_back(self) -> None:
        self.down_status = None

    def hang(self, seconds: float, *, times: int = 1) -> None:
        with self.lock:
            self.hang_next.extend([seconds] * times)

    def fail_record(self, external_id: str, status_code: str, message: str, *, times: int = 1) -> None:
        with self.lock:
            self.record_failures.setdefault(external_id, []).extend([(status_code, message)] * times)

    def expire_sessions(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -- reading the state ---------------------------------------------------------------------------

    def contact(self, customer_id) -> dict | None:
        return self.records["Contact"].get(str(customer_id))

    def events(self) -> dict[str, dict]:
        return self.records["Tessera_Loyalty_Event__c"]

    def upsert_calls(self, sobject: str | None = None) -> list[dict]:
        return [c for c in self.api_calls if sobject is None or c["path"].split("/")[-2] == sobject]

    # -- the org -------------------------------------------------------------------------------------

    def issue_token(self, form: dict) -> tuple[int, dict]:
        grant = form.get("grant_type")
        if grant == JWT_GRANT:
            problem = self._assertion_problem(form.get("assertion", ""))
        elif grant == "client_credentials":
            valid = form.get("client_id") == self.consumer_key and bool(self.client_secret) \
                and secrets.compare_digest(form.get("client_secret", ""), self.client_secret)
            problem = None if valid else ("invalid_client", "invalid client credentials")
        else:
            problem = ("unsupported_grant_type", "grant type not supported")
        if problem:
            return 400, {"error": problem[0], "error_description": problem[1]}
        token = f"00Dfake!{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "instance_url": self.url, "token_type": "Bearer", "scope": "api",
                     "id": f"{self.url}/id/00Dfake/005fake", "issued_at": str(int(time.time() * 1000))}

    def _assertion_problem(self, assertion: str) -> tuple[str, str] | None:
        try:
            if jwt.get_unverified_header(assertion).get("alg") != "RS256":
                return "invalid_grant", "invalid assertion: alg must be RS256"
            claims = jwt.decode(assertion, self.public_key_pem, algorithms=["RS256"], audience=self.url,
                                options={"require": ["iss", "sub", "aud", "exp"]})
        except jwt.InvalidAudienceError:
            return "invalid_grant", "audience is invalid"
        except jwt.ExpiredSignatureError:
            return "invalid_grant", "expired authorization code"
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        self.token_requests[-1]["claims"] = claims
        if claims["exp"] > time.time() + 180:
            return "invalid_grant", "invalid assertion: exp more than 3 minutes ahead"
        if claims["iss"] != self.consumer_key:
            return "invalid_client_id", "client identifier invalid"
        if claims["sub"] != self.username:
            return "invalid_grant", "user hasn't approved this consumer"
        return None

    def upsert(self, sobject: str, ext_field: str, body) -> tuple[int, list]:
        if sobject not in self.schema or self.external_ids[sobject] != ext_field:
            return 404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        if not isinstance(body, dict) or not isinstance(body.get("records"), list) \
                or not isinstance(body.get("allOrNone", False), bool):
            return 400, [{"message": "Expected {allOrNone, records}", "errorCode": "JSON_PARSER_ERROR"}]
        records = body["records"]
        if len(records) > LIMIT:
            return 400, [{"message": "record limit reached. cannot submit more than 200 records into this call",
                          "errorCode": "EXCEEDED_ID_LIMIT"}]
        if any((r.get("attributes") or {}).get("type") != sobject for r in records):
            return 400, [{"message": f"Every record needs attributes.type = {sobject}", "errorCode": "INVALID_TYPE"}]
        seen = Counter(str(r.get(ext_field)) for r in records)
        with self.lock:
            return 200, [self._upsert_one(sobject, ext_field, r, seen) for r in records]

    def _upsert_one(self, sobject: str, ext_field: str, record: dict, seen: Counter) -> dict:
        fields = {k: v for k, v in record.items() if k != "attributes"}
        ext = str(fields.get(ext_field) or "")
        problem = self._record_problem(sobject, ext_field, ext, fields, seen)
        if problem:
            return {"id": None, "success": False, "errors": [problem]}
        stored = self.records[sobject].get(ext)
        created = stored is None
        if created:
            stored = self.records[sobject][ext] = {"Id": f"a0{next(self._ids):016d}"}
            self.created.append((sobject, ext))
        stored.update(fields)
        self.writes[(sobject, ext)] += 1
        return {"id": stored["Id"], "success": True, "errors": [], "created": created}

    def _record_problem(self, sobject, ext_field, ext, fields, seen) -> dict | None:
        def error(code, message, names=()):
            return {"statusCode": code, "message": message, "fields": list(names)}

        if not ext:
            return error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{ext_field}]", [ext_field])
        if seen[ext] > 1:
            return error("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {ext}", [ext_field])
        if "Id" in fields:
            return error("INVALID_FIELD", "Id not allowed when upserting by external id", ["Id"])
        if self.record_failures.get(ext):
            code, message = self.record_failures[ext].pop(0)
            return error(code, message)
        for name in fields:
            if name not in self.schema[sobject]:
                return error("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name])
        if fields.get("Email") and not _EMAIL.match(str(fields["Email"])):
            return error("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {fields['Email']}", ["Email"])
        for name, target in self.lookups.items():
            if name in fields:
                ref = fields[name] if isinstance(fields[name], dict) else {}
                ref_field, ref_value = next(iter(ref.items())) if len(ref) == 1 else (None, None)
                if ref_field != self.external_ids[target] or str(ref_value) not in self.records[target]:
                    return error("INVALID_FIELD", f"Foreign key external ID: {ref_value} not found for field "
                                                  f"{ref_field} in entity {target}", [name])
        missing = [n for n in self.required_on_create.get(sobject, ()) if not fields.get(n)]
        if ext not in self.records[sobject] and missing:
            return error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        return None

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            content_type = "application/json;charset=UTF-8"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def do_POST(self):
                raw = self.read_body()
                if self.path != "/services/oauth2/token":
                    return self.send_json(404, [{"message": "Not found", "errorCode": "NOT_FOUND"}])
                if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                    return self.send_json(400, {"error": "invalid_request", "error_description": "form body expected"})
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                with fake.lock:
                    fake.token_requests.append(dict(form))
                status, body = fake.issue_token(form)
                return self.send_json(status, body)

            def do_PATCH(self):
                raw = self.read_body()
                with fake.lock:
                    fake.api_calls.append({"method": "PATCH", "path": self.path, "port": self.client_address[1],
                                           "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": raw})
                    hang = fake.hang_next.pop(0) if fake.hang_next else 0
                auth = self.headers.get("Authorization") or ""
                if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in fake.tokens:
                    return self.send_json(401, [{"message": "Session expired or invalid",
                                                 "errorCode": "INVALID_SESSION_ID"}])
                with fake.lock:
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                if fake.down_status:
                    failure = (fake.down_status, [{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}], {})
                if failure:
                    return self.send_json(*failure)
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    return self.send_json(415, [{"message": "JSON only", "errorCode": "UNSUPPORTED_MEDIA_TYPE"}])
                match = _COLLECTION.match(self.path)
                if not match or int(match.group(1)) < 46:
                    return self.send_json(404, [{"message": "The requested resource does not exist",
                                                 "errorCode": "NOT_FOUND"}])
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.send_json(400, [{"message": "Malformed JSON", "errorCode": "JSON_PARSER_ERROR"}])
                time.sleep(hang)
                return self.send_json(*fake.upsert(match.group(2), match.group(3), body))

        return Handler
