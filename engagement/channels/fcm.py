"""Firebase Cloud Messaging HTTP v1 client: one notification to one registration token.

`POST {FCM_API_BASE}/v1/projects/{FCM_PROJECT_ID}/messages:send` with `{"message": {"token",
"notification": {"title", "body"}, "data": {...}}}` (data values must be strings), authorised by an
OAuth 2.0 access token for the `firebase.messaging` scope, obtained from the service account by the JWT
bearer grant (the same code as Google Wallet's, wallet.passes.google.credentials) and cached until
shortly before it expires. One client per process and configuration (`fcm_client()`), so the token and
the connection are reused across messages.

Outcomes, from Firebase's error-code table: 200 sent (`name` is the message id); 404 UNREGISTERED and
400 INVALID_ARGUMENT reported by FCM about the token (an `FcmError` detail) mean the token is gone for
good; 429 QUOTA_EXCEEDED, 5xx and transport errors are retryable (Retry-After honoured by the caller);
other 4xx (a payload FCM refuses, 403 SENDER_ID_MISMATCH or PERMISSION_DENIED) are permanent. A 401
drops the cached access token and the request is sent once more with a fresh one.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import httpx
from django.conf import settings

from core.http import parse_retry_after
from wallet.passes.apple.apns import PERMANENT, RETRYABLE, SENT, UNREGISTERED  # one outcome vocabulary
from wallet.passes.google.credentials import (
    DEFAULT_TIMEOUT,
    CredentialsError,
    ServiceAccount,
    ServiceAccountCredentials,
    TokenRequestError,
)

logger = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_API_BASE = "https://fcm.googleapis.com"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
DEAD_TOKEN_CODES = frozenset({"UNREGISTERED", "INVALID_ARGUMENT"})


@dataclass(frozen=True)
class FcmResult:
    outcome: str  # SENT, UNREGISTERED (the token is gone), RETRYABLE or PERMANENT
    status: int | None = None
    reason: str = ""  # FCM's errorCode, or the google.rpc status, or what went wrong
    message_id: str = ""  # "projects/<project>/messages/<id>"
    retry_after: float | None = None


class FcmClient:
    def __init__(
        self,
        *,
        project_id: str,
        credentials: ServiceAccountCredentials,
        base_url: str = DEFAULT_API_BASE,
        http_client: httpx.Client | None = None,
    ):
        self.project_id = project_id
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self._http = http_client or httpx.Client(timeout=DEFAULT_TIMEOUT)

    @classmethod
    def from_settings(cls) -> FcmClient:
        project_id = getattr(settings, "FCM_PROJECT_ID", "")
        account_file = getattr(settings, "FCM_SERVICE_ACCOUNT_FILE", "")
        if not (project_id and account_file):
            raise CredentialsError("Set FCM_PROJECT_ID and FCM_SERVICE_ACCOUNT_FILE to send Android pushes.")
        http = httpx.Client(timeout=DEFAULT_TIMEOUT)
        credentials = ServiceAccountCredentials(
            ServiceAccount.from_file(account_file), getattr(settings, "FCM_TOKEN_URL", "") or None,
            scope=FCM_SCOPE, http_client=http,
        )
        return cls(project_id=project_id, credentials=credentials,
                   base_url=getattr(settings, "FCM_API_BASE", "") or DEFAULT_API_BASE, http_client=http)

    def close(self) -> None:
        self._http.close()

    def send(self, token: str, *, title: str, body: str, data: dict[str, str] | None = None) -> FcmResult:
        message = {"token": token, "notification": {"title": title, "body": body}}
        if data:
            message["data"] = {key: str(value) for key, value in data.items()}
        url = f"{self.base_url}/v1/projects/{self.project_id}/messages:send"
        for attempt in (1, 2):
            try:
                headers = {"Authorization": f"Bearer {self.credentials.token()}"}
            except TokenRequestError as error:
                logger.warning("FCM access token refused: %s", error)
                return FcmResult(RETRYABLE if error.retryable else PERMANENT, error.status, "token_request")
            try:
                response = self._http.post(url, json={"message": message}, headers=headers)
            except httpx.TransportError as error:
                return FcmResult(RETRYABLE, reason=f"transport: {type(error).__name__}")
            if response.status_code == 401 and attempt == 1:
                self.credentials.invalidate()
                continue
            break
        return _classify(response)


def _classify(response: httpx.Response) -> FcmResult:
    status = response.status_code
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = {}
    if status == 200:
        return FcmResult(SENT, status, message_id=str(body.get("name", ""))[:200])
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    fcm_code = next(
        (str(detail.get("errorCode", "")) for detail in error.get("details") or []
         if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE),
        "",
    )
    reason = fcm_code or str(error.get("status", "")) or f"HTTP {status}"
    if fcm_code in DEAD_TOKEN_CODES and status in (400, 404):
        return FcmResult(UNREGISTERED, status, reason)
    if status == 429 or status >= 500:
        return FcmResult(RETRYABLE, status, reason, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    logger.error("FCM refused a message: %s %s", status, reason)
    return FcmResult(PERMANENT, status, reason)


_clients: dict[tuple, FcmClient] = {}
_clients_lock = threading.Lock()


def fcm_configured() -> bool:
    return bool(getattr(settings, "FCM_PROJECT_ID", "") and getattr(settings, "FCM_SERVICE_ACCOUNT_FILE", ""))


def fcm_client() -> FcmClient:
    """This process's client for the current settings (built once: the access token is cached in it)."""
    key = tuple(getattr(settings, name, "") for name in
                ("FCM_PROJECT_ID", "FCM_SERVICE_ACCOUNT_FILE", "FCM_API_BASE", "FCM_TOKEN_URL"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = FcmClient.from_settings()
        return client
