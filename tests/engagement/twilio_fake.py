"""A local fake of Twilio's Programmable Messaging API, the one call the SMS channel makes.

Built from Twilio's reference for the Message resource: POST /2010-04-01/Accounts/{AccountSid}/Messages.json,
HTTP basic auth AccountSid:AuthToken (else 401, code 20003), form-encoded `To` (E.164, else 400 code
21211), `Body` (else 21602), and `From` or `MessagingServiceSid` (else 21603); 201 answers the Message
resource with an `SM...` sid and status "queued" ("accepted" through a messaging service). Errors answer
{"code", "message", "more_info", "status"}. Switches: numbers that answer a given error code (21610 after
a STOP reply, 21614 for a landline), and injected 429 (with Retry-After) or 5xx answers.
"""
from __future__ import annotations

import base64
import re
import secrets
from urllib.parse import parse_qs

from tests.fake_http import JsonRequestHandler, LocalServer

PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
ERRORS = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
}


def error_body(code: int, status: int, to: str = "") -> dict:
    return {"code": code, "message": ERRORS.get(code, "Error").format(to=to),
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


class FakeTwilio(LocalServer):
    poll_interval = 0.05

    def __init__(self, *, account_sid: str, auth_token: str):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.messages: list[dict] = []  # accepted Message resources
        self.requests: list[dict] = []  # every request: method, path, content type, form, authorization
        self.number_errors: dict[str, int] = {}  # To -> Twilio error code answered with 400
        self.fail_next: list[tuple[int, dict]] = []
        super().__init__()

    def fail(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self.fail_next.extend([(status, headers)] * times)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    def _create(self, form: dict) -> tuple[int, dict]:
        to = form.get("To", "")
        if not E164.match(to):
            return 400, error_body(21211, 400, to)
        if to in self.number_errors:
            return 400, error_body(self.number_errors[to], 400, to)
        if not form.get("Body"):
            return 400, error_body(21602, 400)
        service = form.get("MessagingServiceSid")
        if not (form.get("From") or service):
            return 400, error_body(21603, 400)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": form.get("From"),
            "messaging_service_sid": service, "body": form["Body"], "status": "accepted" if service else "queued",
            "direction": "outbound-api", "api_version": "2010-04-01", "num_segments": "1", "num_media": "0",
            "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages.append(message)
        return 201, message

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            def do_POST(self):
                raw = self.read_body().decode()
                content_type = self.headers.get("Content-Type", "")
                form = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
                with fake.lock:
                    fake.requests.append({"method": "POST", "path": self.path, "content_type": content_type,
                                          "form": form, "authorization": self.headers.get("Authorization", "")})
                if not fake._authorized(self.headers.get("Authorization", "")):
                    return self.send_json(401, error_body(20003, 401), {"WWW-Authenticate": 'Basic realm="Twilio API"'})
                route = PATH.match(self.path)
                if not route or route["sid"] != fake.account_sid:
                    return self.send_json(404, error_body(20404, 404))
                if not content_type.startswith("application/x-www-form-urlencoded"):
                    return self.send_json(400, error_body(21602, 400))
                with fake.lock:
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                    if failure is None:
                        return self.send_json(*fake._create(form))
                status, headers = failure
                code = 20429 if status == 429 else 20500
                return self.send_json(status, error_body(code, status), headers)

        return Handler
