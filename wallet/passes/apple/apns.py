"""APNs provider client for Wallet pass updates: HTTP/2, token (ES256 JWT) authentication.

A pass update push is `POST {BASE_URL}/3/device/<push token>` with `apns-topic: <pass type id>` and
the empty JSON dictionary `{}` as payload; the device then asks the web service what changed. Apple
documents certificate auth for Wallet; token auth with the team's .p8 key is reported to work and is
what this client implements (see the reference, section 2.2). The same client (same .p8 key, same
cached provider token) sends the wallet app's alert pushes (`push_alert`, topic = the app's bundle id).

Outcomes: 200 sent; 410 unregistered (the caller drops the registration); 429, 5xx, transport errors
and an expired provider token are retryable; other 4xx (400 BadDeviceToken, 403 ...) are permanent.
Callers also drop a token on a permanent answer whose reason is in `DEAD_TOKEN_REASONS`.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

TOKEN_REFRESH_SECONDS = 50 * 60  # Apple rejects provider tokens older than 60 minutes
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
PUSH_TOKEN_PATTERN = re.compile(r"^[0-9a-fA-F]{16,200}$")

SENT, UNREGISTERED, RETRYABLE, PERMANENT = "sent", "unregistered", "retryable", "permanent"

# Besides 410 Unregistered: APNs answers 400 BadDeviceToken for a token it will never deliver to from
# this gateway (malformed, or a development build's sandbox token sent to production). Pushing it again
# only fails again; a device with a good token registers it again (the app on start, Wallet through the
# PassKit web service), which brings it back.
# Not DeviceTokenNotForTopic: that one means our topic setting (bundle id, pass type id) is wrong, not the device.
DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken"})


@dataclass(frozen=True)
class PushResult:
    outcome: str  # SENT, UNREGISTERED, RETRYABLE or PERMANENT
    status: int | None = None
    reason: str = ""
    apns_id: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == SENT

    @property
    def retryable(self) -> bool:
        return self.outcome == RETRYABLE


class ApnsClient:
    def __init__(
        self,
        *,
        base_url: str,
        key_pem: bytes | str,
        key_id: str,
        team_id: str,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ):
        if not (key_pem and key_id and team_id):
            raise ImproperlyConfigured("APNs needs a .p8 key, its key id and the team id.")
        self._key = key_pem
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._token: str | None = None
        self._token_issued_at = 0.0
        self._lock = threading.Lock()
        # Production: HTTP/2 (APNs speaks nothing else). Tests inject a transport that fakes APNs.
        self._http = httpx.Client(base_url=base_url.rstrip("/"), http2=True, timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, **kwargs) -> ApnsClient:
        config = settings.APNS
        if not config.get("KEY_PATH"):
            raise ImproperlyConfigured("Set APNS_KEY_PATH, APNS_KEY_ID and APNS_TEAM_ID to push pass updates.")
        return cls(
            base_url=config["BASE_URL"], key_pem=Path(config["KEY_PATH"]).read_bytes(),
            key_id=config.get("KEY_ID") or "", team_id=config.get("TEAM_ID") or "", **kwargs,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def provider_token(self) -> str:
        """The ES256 provider JWT, reused until it is 50 minutes old (APNs limits how often it may change)."""
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._token_issued_at >= TOKEN_REFRESH_SECONDS:
                self._token = jwt.encode(
                    {"iss": self._team_id, "iat": int(now)}, self._key, algorithm="ES256",
                    headers={"kid": self._key_id},
                )
                self._token_issued_at = now
            return self._token

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def push_pass_update(self, push_token: str, topic: str) -> PushResult:
        """Send the empty-payload pass update push to one device."""
        # background pushes must use priority 5
        return self._push(push_token, topic, push_type="background", priority="5", body=b"{}")

    def push_alert(self, push_token: str, topic: str, payload: dict) -> PushResult:
        """Send a visible alert to an app (`topic` = its bundle id): `payload` is the APNs JSON dictionary,
        `{"aps": {"alert": {"title", "body"}}, ...custom keys}`. Same outcomes as a pass push."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return self._push(push_token, topic, push_type="alert", priority="10", body=body)

    def _push(self, push_token: str, topic: str, *, push_type: str, priority: str, body: bytes) -> PushResult:
        if not PUSH_TOKEN_PATTERN.match(push_token or ""):
            return PushResult(PERMANENT, reason="BadDeviceToken")
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": topic,
            "apns-push-type": push_type,
            "apns-priority": priority,
            "content-type": "application/json",
        }
        try:
            response = self._http.post(f"/3/device/{push_token}", headers=headers, content=body)
        except httpx.TransportError as error:  # timeouts, refused connections, broken streams
            logger.warning("APNs transport error: %s", error)
            return PushResult(RETRYABLE, reason=f"transport: {type(error).__name__}")
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        apns_id = response.headers.get("apns-id", "")
        try:
            reason = str(response.json().get("reason", "")) if response.content else ""
        except (ValueError, AttributeError):
            reason = response.text[:200]
        if status == 200:
            return PushResult(SENT, status, apns_id=apns_id)
        if status == 410:
            return PushResult(UNREGISTERED, status, reason or "Unregistered", apns_id)
        if status == 403 and reason == "ExpiredProviderToken":
            self._forget_token()
            return PushResult(RETRYABLE, status, reason, apns_id)
        if status == 429 or status >= 500:
            return PushResult(RETRYABLE, status, reason, apns_id, _retry_after(response))
        logger.error("APNs rejected a push: %s %s", status, reason)
        return PushResult(PERMANENT, status, reason, apns_id)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
