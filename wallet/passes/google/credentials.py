"""Google service-account credentials: the key file, and OAuth 2.0 access tokens by the JWT bearer grant.

The token request is RFC 7523 as Google documents it for service accounts: POST to the token URL, form
fields `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion=<JWT>`, the assertion
signed RS256 with the account's private key, claims iss (client_email), scope, aud (the token URL),
iat and exp (at most one hour later). Tokens are cached until shortly before they expire.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from django.conf import settings

WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # Google's maximum
REFRESH_MARGIN = 300  # seconds before expiry when a cached token is replaced
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class CredentialsError(Exception):
    """The service account file is missing or malformed."""


class TokenRequestError(Exception):
    """The token endpoint refused the grant or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: str
    token_uri: str = ""
    private_key_id: str = ""

    @classmethod
    def from_info(cls, info: dict) -> ServiceAccount:
        missing = [k for k in ("client_email", "private_key") if not info.get(k)]
        if missing:
            raise CredentialsError(f"service account JSON lacks {', '.join(missing)}")
        return cls(
            client_email=info["client_email"],
            private_key=info["private_key"],
            token_uri=info.get("token_uri", ""),
            private_key_id=info.get("private_key_id", ""),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ServiceAccount:
        try:
            info = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CredentialsError(f"cannot read service account file {path}: {exc}") from exc
        if not isinstance(info, dict):
            raise CredentialsError(f"service account file {path} is not a JSON object")
        return cls.from_info(info)

    def sign(self, claims: dict) -> str:
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)


def load_service_account() -> ServiceAccount:
    path = settings.GOOGLE_WALLET.get("SERVICE_ACCOUNT_FILE")
    if not path:
        raise CredentialsError("GOOGLE_WALLET_SERVICE_ACCOUNT_FILE is not set")
    return ServiceAccount.from_file(path)


class ServiceAccountCredentials:
    """Gives a valid Bearer access token for the Wallet scope, fetching a new one only when needed."""

    def __init__(
        self,
        service_account: ServiceAccount,
        token_url: str | None = None,
        *,
        scope: str = WALLET_SCOPE,
        http_client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.service_account = service_account
        self.token_url = token_url or service_account.token_uri
        if not self.token_url:
            raise CredentialsError("no token URL (settings TOKEN_URL or the file's token_uri)")
        self.scope = scope
        self._http = http_client or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    @classmethod
    def from_settings(cls, *, http_client: httpx.Client | None = None) -> ServiceAccountCredentials:
        return cls(load_service_account(), settings.GOOGLE_WALLET.get("TOKEN_URL"), http_client=http_client)

    def assertion(self, now: int) -> str:
        claims = {
            "iss": self.service_account.client_email,
            "scope": self.scope,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        return self.service_account.sign(claims)

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN:
                self._fetch()
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (after the API answered 401 to it)."""
        with self._lock:
            self._token = None
            self._expires_at = 0.0

    def _fetch(self) -> None:
        now = int(self._clock())
        data = {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion(now)}
        try:
            response = self._http.post(self.token_url, data=data)
        except httpx.HTTPError as exc:
            raise TokenRequestError(f"token endpoint unreachable: {exc}", retryable=True) from exc
        if response.status_code != 200:
            try:
                body = response.json()
                detail = f"{body.get('error')}: {body.get('error_description', '')}"
            except ValueError:
                detail = response.text[:200]
            retryable = response.status_code == 429 or response.status_code >= 500
            raise TokenRequestError(
                f"token endpoint answered {response.status_code} ({detail})",
                status=response.status_code, retryable=retryable,
            )
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = int(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenRequestError(f"malformed token response: {exc}") from exc
        self._token = token
        self._expires_at = now + expires_in
