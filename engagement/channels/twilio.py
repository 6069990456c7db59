"""Twilio's Programmable Messaging REST API: the one call that sends an SMS.

POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded To, Body and either From (a
Twilio number or sender id) or MessagingServiceSid, HTTP basic auth AccountSid:AuthToken; 201 answers
the Message resource, whose `sid` (SM...) we keep. Errors answer {"code", "message", "more_info",
"status"}.

One attempt, never a sleep: the dispatcher runs inside a beat task and decides what a failure means.
429 and 5xx (and a connection that never opened) are retryable, with Retry-After read into
`retry_after`; no answer to a request that left is not (Twilio may have queued it: a retry could text
twice); a few Twilio codes say the recipient can never be reached (permanent); 21610, a STOP reply to our sender, also
says the recipient opted out (`recipient_opted_out`), so the dispatcher withdraws their SMS consent.
A send is not idempotent on Twilio's side, so nothing here retries it. The auth token never appears in
a log line or an exception, and neither does the phone number: Twilio's own error text may echo it, so
we keep only its code.
"""
import logging
import re

import httpx
from django.core.exceptions import ImproperlyConfigured

from core.http import DEFAULT_TIMEOUT, parse_retry_after
from core.vendor_urls import is_secure_or_loopback
from engagement.channels.base import SendFailed

logger = logging.getLogger(__name__)

PRODUCTION_BASE_URL = "https://api.twilio.com"
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# Twilio's 1,600-character limit on a message body.
MAX_BODY_CHARS = 1600

# Twilio error codes after which sending to this number again is pointless.
PERMANENT_CODES = {
    21211: "invalid 'To' number",
    21610: "recipient replied STOP to this sender",
    21614: "'To' number is not a mobile number",
}
# The recipient replied STOP (or UNSUBSCRIBE, CANCEL, ...) to our sender: Twilio blocks every later text
# from it until they reply START, so this is their opt-out, not a broken number.
OPT_OUT_CODES = frozenset({21610})


# Transport errors raised before any byte of the request reached Twilio.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class TwilioSendFailed(SendFailed):
    """A refused or failed send, with what Twilio said about it (never the number or the token)."""

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None,
                 code: int | None = None, retry_after: float | None = None, recipient_opted_out: bool = False):
        super().__init__(message, permanent=permanent, retry_after=retry_after,
                         recipient_opted_out=recipient_opted_out)
        self.status, self.code = status, code


class TwilioClient:
    def __init__(self, *, account_sid: str, auth_token: str, from_number: str = "",
                 messaging_service_sid: str = "", base_url: str = PRODUCTION_BASE_URL,
                 transport: httpx.BaseTransport | None = None, timeout: httpx.Timeout = DEFAULT_TIMEOUT):
        if not ACCOUNT_SID.match(account_sid or ""):
            raise ImproperlyConfigured("TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits.")
        if not auth_token:
            raise ImproperlyConfigured("TWILIO_AUTH_TOKEN is empty.")
        if messaging_service_sid and not MESSAGING_SERVICE_SID.match(messaging_service_sid):
            raise ImproperlyConfigured("TWILIO_MESSAGING_SERVICE_SID must look like MG followed by 32 hex digits.")
        if not (from_number or messaging_service_sid):
            raise ImproperlyConfigured("Set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID.")
        base_url = (base_url or PRODUCTION_BASE_URL).rstrip("/")
        if not is_secure_or_loopback(base_url):
            raise ImproperlyConfigured("TWILIO_API_BASE must be https (plain http only to this machine).")
        self.account_sid = account_sid
        # A messaging service picks the sender from its pool; it wins over a fixed From.
        self.sender = {"MessagingServiceSid": messaging_service_sid} if messaging_service_sid else {
            "From": from_number}
        self.http = httpx.Client(base_url=base_url, auth=(account_sid, auth_token), timeout=timeout,
                                 transport=transport, headers={"Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_message(self, to_e164: str, body: str) -> str:
        """Queue one SMS with Twilio; its Message SID. Raises TwilioSendFailed."""
        if not E164.match(to_e164 or ""):
            raise TwilioSendFailed("The phone number is not in E.164 form.", permanent=True)
        if not body or len(body) > MAX_BODY_CHARS:
            raise TwilioSendFailed(f"The body must have 1 to {MAX_BODY_CHARS} characters.", permanent=True)
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            response = self.http.post(path, data={"To": to_e164, **self.sender, "Body": body})
        except NOT_SENT as error:  # the request never left: trying again later cannot send it twice
            logger.warning("Twilio unreachable: %s", type(error).__name__)
            raise TwilioSendFailed(f"Twilio could not be reached ({type(error).__name__}).") from None
        except httpx.TransportError as error:
            # The request left and no answer came: Twilio may have queued the text. A send is not
            # idempotent there, so a retry could text the customer twice; a lost campaign text is the
            # smaller harm. Permanent, and said so in the send log.
            logger.warning("Twilio did not answer a sent request: %s", type(error).__name__)
            raise TwilioSendFailed(
                f"No answer from Twilio after sending ({type(error).__name__}): the text may have gone out; "
                "not retried, so it cannot arrive twice.", permanent=True,
            ) from None
        if response.is_success:
            sid = _json(response).get("sid")
            if not isinstance(sid, str) or not sid:
                # Accepted, but we cannot tell what: sending again could reach the customer twice.
                raise TwilioSendFailed("Twilio accepted the message without a sid.", permanent=True,
                                       status=response.status_code)
            logger.info("Twilio queued SMS %s", sid)
            return sid
        raise _failure(response)


def _json(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _failure(response: httpx.Response) -> TwilioSendFailed:
    status = response.status_code
    code = _json(response).get("code")
    code = code if isinstance(code, int) else None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    logger.warning("Twilio refused an SMS: HTTP %s, code %s", status, code)
    if code in PERMANENT_CODES:
        return TwilioSendFailed(f"Twilio error {code}: {PERMANENT_CODES[code]}.", permanent=True, status=status,
                                code=code, recipient_opted_out=code in OPT_OUT_CODES)
    if status == 429 or status >= 500:
        wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
        return TwilioSendFailed(f"Twilio answered HTTP {status}{wait}.", status=status, code=code,
                                retry_after=retry_after)
    if status in (401, 403):
        return TwilioSendFailed(f"Twilio refused this site's credentials (HTTP {status}, code {code}).",
                                status=status, code=code)
    # Another refusal (sender not allowed, region disabled, ...): this site's setup, not the recipient.
    return TwilioSendFailed(f"Twilio refused the message (HTTP {status}, code {code}).", status=status, code=code)
