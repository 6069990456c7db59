"""A local fake of Google's OAuth token endpoint and the FCM HTTP v1 `messages:send` API.

Built from Firebase's documentation: the JWT bearer grant with an RS256 assertion (checked against the
service account's public key, its issuer, audience, lifetime and the firebase.messaging scope);
`POST /v1/projects/{project}/messages:send` with a Bearer access token it issued; the message checked
as FCM checks it (exactly one target, notification title/body strings, data values strings, no unknown
fields: a google.rpc.BadRequest naming the field); 404 UNREGISTERED and 400 INVALID_ARGUMENT as
`google.firebase.fcm.v1.FcmError` details for tokens it is told are gone or malformed; and switches to
answer 429 (with Retry-After) or 5xx. Success is `{"name": "projects/<project>/messages/<id>"}`.
"""
from __future__ import annotations

import json
import secrets

from tests.fake_http import JsonRequestHandler, LocalServer
from tests.google_oauth_fake import jwt_grant_error

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
MESSAGE_FIELDS = {"name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token", "topic",
                  "condition"}


class FakeFcm(LocalServer):
    poll_interval = 0.02

    def __init__(self, *, project_id: str, client_email: str, public_key_pem: str):
        self.project_id = project_id
        self.client_email = client_email
        self.public_key_pem = public_key_pem
        self.tokens: set[str] = set()  # access tokens issued and still valid
        self.token_requests = 0
        self.sent: list[dict] = []  # each accepted message, with the "authorization" it came with
        self.unregistered: set[str] = set()  # registration tokens FCM answers 404 UNREGISTERED for
        self.invalid: set[str] = set()  # registration tokens FCM answers 400 INVALID_ARGUMENT for
        self.fail_next: list[tuple[int, dict]] = []  # (status, headers) for the next sends, in order
        super().__init__()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def fail(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.fail_next.extend([(status, headers)] * times)

    def revoke_access_tokens(self) -> None:
        """Access tokens stop working (as when one expires early): the next send answers 401."""
        with self.lock:
            self.tokens.clear()

    def _handler_class(self):
        fake = self

        class Handler(JsonRequestHandler):
            content_type = "application/json; charset=UTF-8"

            def _error(self, status: int, message: str, details: list | None = None, headers: dict | None = None):
                error = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
                if details is not None:
                    error["details"] = details
                self.send_json(status, {"error": error}, headers)

            def _bad_field(self, field: str, description: str):
                self._error(400, description, [{"@type": BAD_REQUEST_TYPE,
                                                "fieldViolations": [{"field": field, "description": description}]}])

            def _fcm_error(self, status: int, code: str, message: str):
                self._error(status, message, [{"@type": FCM_ERROR_TYPE, "errorCode": code}])

            def do_POST(self):
                raw = self.read_body()
                if self.path == "/token":
                    return self._token(raw)
                prefix, suffix = f"/v1/projects/{fake.project_id}/", "messages:send"
                if self.path != prefix + suffix:
                    return self._error(404, "Requested entity was not found.")
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in fake.tokens:
                    return self._error(401, "Request had invalid authentication credentials.")
                with fake.lock:
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                if failure:
                    return self._error(failure[0], "injected failure", headers=failure[1])
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._bad_field("", "Invalid JSON payload received.")
                return self._messages_send(body, auth)

            def _messages_send(self, body, auth: str):
                if not isinstance(body, dict) or set(body) - {"message", "validate_only"}:
                    return self._bad_field("", "Invalid JSON payload received. Unknown name.")
                message = body.get("message")
                if not isinstance(message, dict):
                    return self._bad_field("message", "message is required")
                unknown = sorted(set(message) - MESSAGE_FIELDS)
                if unknown:
                    return self._bad_field("message", f'Invalid JSON payload received. Unknown name "{unknown[0]}"')
                if sum(1 for target in ("token", "topic", "condition") if target in message) != 1:
                    return self._bad_field("message", "Exactly one of token, topic or condition is required.")
                notification = message.get("notification", {})
                if not isinstance(notification, dict) or set(notification) - {"title", "body", "image"} or any(
                    not isinstance(value, str) for value in notification.values()
                ):
                    return self._bad_field("message.notification", "Invalid notification.")
                for index, (key, value) in enumerate((message.get("data") or {}).items()):
                    if not isinstance(value, str):
                        return self._bad_field(f"message.data[{index}].value",
                                               f"Invalid value at 'message.data[{index}].value' (TYPE_STRING)")
                    if key.startswith(("google", "gcm")) or key == "from":
                        return self._bad_field(f"message.data[{index}].key", "Reserved data key.")
                token = message.get("token", "")
                if token in fake.invalid:
                    return self._fcm_error(400, "INVALID_ARGUMENT",
                                           "The registration token is not a valid FCM registration token")
                if token in fake.unregistered:
                    return self._fcm_error(404, "UNREGISTERED", "Requested entity was not found.")
                with fake.lock:
                    fake.sent.append({**message, "authorization": auth})
                    number = len(fake.sent)
                return self.send_json(200, {"name": f"projects/{fake.project_id}/messages/0:{number}%fake"})

            def _token(self, raw: bytes):
                fake.token_requests += 1
                error = jwt_grant_error(raw, public_key_pem=fake.public_key_pem, token_url=fake.token_url,
                                        client_email=fake.client_email, scope=FCM_SCOPE)
                if error:
                    return self.send_json(400, error)
                token = "ya29.fcm-" + secrets.token_urlsafe(24)
                with fake.lock:
                    fake.tokens.add(token)
                return self.send_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

        return Handler
