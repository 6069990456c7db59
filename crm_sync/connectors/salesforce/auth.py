"""Salesforce OAuth 2.0 access tokens for a server-to-server integration.

Two flows (wallet-crm-vendors.md 5.1, 5.2): the JWT bearer flow, an RS256 assertion signed with the
key whose certificate is on the connected app (iss = consumer key, sub = username, aud = login URL,
exp within 3 minutes), and the client credentials flow (consumer key and secret, acting as the app's
run-as user; it needs the org's My Domain URL). Neither returns an expiry or a refresh token, so a
token is kept for TOKEN_TTL_SECONDS and minted again after that, or at once when the API answers 401.

Tokens are cached per process, keyed by everything that identifies the credentials: each batch builds
a new connector, and minting a token per batch would cost a login call every time.
"""
import hashlib
import threading
import time
from dataclasses import dataclass, field

import httpx
import jwt

from core.http import parse_retry_after
from crm_sync.base import CrmRateLimited, CrmRejected, CrmUnavailable

JWT_BEARER = "jwt_bearer"
CLIENT_CREDENTIALS = "client_credentials"
FLOWS = (JWT_BEARER, CLIENT_CREDENTIALS)
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a path, not a secret)
# Salesforce refuses an assertion whose exp is more than 3 minutes away; 2 leaves room for clock skew.
ASSERTION_LIFETIME_SECONDS = 120
# No expiry comes with the token; 15 minutes is the shortest session timeout an org can set.
TOKEN_TTL_SECONDS = 15 * 60


@dataclass(frozen=True)
class Credentials:
    flow: str
    login_url: str
    consumer_key: str
    username: str = ""
    private_key: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)

    def cache_key(self) -> tuple:
        """Identifies the credentials without keeping the secrets themselves in the key."""
        digest = hashlib.sha256(f"{self.private_key}\0{self.client_secret}".encode()).hexdigest()
        return (self.flow, self.login_url, self.consumer_key, self.username, digest)


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    instance_url: str
    expires_at: float  # on the cache's clock (monotonic)


def jwt_assertion(credentials: Credentials, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"iss": credentials.consumer_key, "sub": credentials.username, "aud": credentials.login_url,
              "exp": issued + ASSERTION_LIFETIME_SECONDS}
    try:
        return jwt.encode(claims, credentials.private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise CrmRejected(f"The private key cannot sign the login assertion: {error}") from error


def token_form(credentials: Credentials) -> dict:
    if credentials.flow == JWT_BEARER:
        return {"grant_type": JWT_GRANT, "assertion": jwt_assertion(credentials)}
    if credentials.flow == CLIENT_CREDENTIALS:
        return {"grant_type": "client_credentials", "client_id": credentials.consumer_key,
                "client_secret": credentials.client_secret}
    raise CrmRejected(f"Unknown authentication flow {credentials.flow!r}.")


def request_token(http: httpx.Client, credentials: Credentials, *, expires_at: float) -> AccessToken:
    """POST the token endpoint; a refusal (bad key, unapproved user, wrong secret) is for good."""
    url = credentials.login_url.rstrip("/") + TOKEN_PATH
    try:
        response = http.post(url, data=token_form(credentials), headers={"Accept": "application/json"})
    except httpx.TransportError as error:
        raise CrmUnavailable(f"Salesforce login: {type(error).__name__}") from error
    if response.status_code == 429:
        raise CrmRateLimited("Salesforce login answered 429",
                             retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if response.status_code >= 500:
        raise CrmUnavailable(f"Salesforce login answered {response.status_code}",
                             retry_after=parse_retry_after(response.headers.get("Retry-After")))
    body = _json_object(response)
    if not response.is_success:
        reason = f"{body.get('error') or 'error'}: {body.get('error_description') or response.text[:200]}"
        raise CrmRejected(f"Salesforce refused the login ({reason}).")
    if not body.get("access_token") or not body.get("instance_url"):
        raise CrmUnavailable("Salesforce login answered without an access_token and instance_url.")
    return AccessToken(str(body["access_token"]), str(body["instance_url"]).rstrip("/"), expires_at)


def _json_object(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class TokenCache:
    """One token per set of credentials, shared by the connections of this process."""

    def __init__(self, *, clock=time.monotonic):
        self.clock = clock
        self._tokens: dict[tuple, AccessToken] = {}
        # One lock for all: logins are rare, and it stops concurrent batches minting tokens side by side.
        self._lock = threading.Lock()

    def get(self, http: httpx.Client, credentials: Credentials) -> AccessToken:
        key = credentials.cache_key()
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at <= self.clock():
                token = request_token(http, credentials, expires_at=self.clock() + TOKEN_TTL_SECONDS)
                self._tokens[key] = token
            return token

    def invalidate(self, credentials: Credentials, token: AccessToken) -> None:
        """Forget `token` (the API refused it); a token another batch minted since is kept."""
        with self._lock:
            if self._tokens.get(credentials.cache_key()) == token:
                del self._tokens[credentials.cache_key()]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()
