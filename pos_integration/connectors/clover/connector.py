"""The Clover POS connector: Clover's thin webhook notifications, the payments they point to, and a
reconciliation poll (Clover does not guarantee that notifications arrive).

Verification: Clover sends a static shared code, `X-Clover-Auth`, in every notification; no HMAC,
no timestamp, so there is no replay window to check. We compare the code in constant time and, since
the body is only a list of ids, trust nothing in it but the ids: every amount comes from the REST
API. The one unauthenticated request accepted is Clover's URL check, `{"verificationCode": ...}`,
which produces no events (the merchant copies the code from the stored delivery).
"""
import hashlib
import hmac
import logging
import re
import time
from urllib.parse import urlsplit

from core.http import VendorError
from core.vendor_urls import is_secure_or_loopback
from pos_integration.base import ConfigField, ConfigInvalid, ConnectorError, PosConnector, WebhookRejected
from pos_integration.connectors.clover import mapping
from pos_integration.connectors.clover.client import PRODUCTION_BASE_URL, CloverClient
from pos_integration.types import ParsedWebhook, PollResult, WebhookRequest

logger = logging.getLogger(__name__)

AUTH_HEADER = "X-Clover-Auth"
MERCHANT_ID = re.compile(r"^[A-Z0-9]{13}$")
# The first poll looks back an hour: enough to cover the time between creating the connection and
# the first scheduled poll, not so much that old sales flood in.
INITIAL_LOOKBACK_MS = 60 * 60 * 1000
# Each poll asks again for the last five minutes before its cursor: Clover's and our clocks differ,
# and a payment may show up in a listing a little after its modifiedTime. Replays earn nothing twice.
OVERLAP_MS = 5 * 60 * 1000


class CloverConnector(PosConnector):
    key = "clover"
    name = "Clover"
    config_fields = (
        ConfigField("clover_merchant_id", "Clover merchant ID",
                    help_text="The 13-character merchant ID of the Clover account whose sales earn points."),
        ConfigField("api_token", "API access token", secret=True,
                    help_text="OAuth access token of the Clover app (a test API token in the sandbox); "
                              "needs Read Payments, Read Orders and Read Customers."),
        ConfigField("auth_code", "Clover Auth Code", secret=True, required=False,
                    help_text="Shown in the Clover app's webhook settings once the URL is verified. Until it "
                              "is set, every notification except the verification request is refused."),
        ConfigField("api_base_url", "API base URL", required=False,
                    help_text=f"{PRODUCTION_BASE_URL} (default, North America), https://api.eu.clover.com, "
                              "https://api.la.clover.com, or https://apisandbox.dev.clover.com for the sandbox."),
    )
    secret_headers = (AUTH_HEADER,)
    supports_polling = True

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        merchant_id = str(config.get("clover_merchant_id") or "").strip()
        if merchant_id and not MERCHANT_ID.match(merchant_id):
            errors["clover_merchant_id"] = "A Clover merchant ID is 13 capital letters and digits."
        base_url = str(config.get("api_base_url") or "").strip()
        if base_url and (problem := _base_url_problem(base_url)):
            errors["api_base_url"] = problem
        if errors:
            raise ConfigInvalid(errors)

    @property
    def merchant_id(self) -> str:
        return str(self.config.get("clover_merchant_id") or "").strip()

    def client(self) -> CloverClient:
        return CloverClient(
            base_url=str(self.config.get("api_base_url") or "").strip().rstrip("/") or PRODUCTION_BASE_URL,
            api_token=str(self.secrets.get("api_token") or "").strip(), merchant_id=self.merchant_id,
        )

    # -- webhooks ---------------------------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> None:
        if mapping.is_verification(mapping.load_json(request.body)):
            return  # Clover's URL check comes before the merchant has an auth code to send
        expected = str(self.secrets.get("auth_code") or "").strip()
        if not expected:
            raise WebhookRejected("No Clover Auth Code is configured for this connection yet.")
        given = request.header(AUTH_HEADER)
        if not given:
            raise WebhookRejected(f"Missing {AUTH_HEADER} header.")
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise WebhookRejected(f"Wrong {AUTH_HEADER} code.")

    def webhook_event_id(self, request: WebhookRequest) -> str:
        payload = mapping.load_json(request.body)
        if mapping.is_verification(payload):
            return ""
        identity = mapping.delivery_id(mapping.notification_updates(payload))
        return identity if len(identity) <= 255 else f"sha256:{hashlib.sha256(identity.encode()).hexdigest()}"

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        payload = mapping.load_json(request.body)
        if mapping.is_verification(payload):
            return ParsedWebhook(events=[])
        if not isinstance(payload, dict) or not isinstance(payload.get("merchants"), dict):
            raise ConnectorError("Not a Clover notification: no merchants map.")
        updates = mapping.notification_updates(payload)
        ours = [u for u in updates if u.merchant_id == self.merchant_id and mapping.is_safe_object_id(u.object_id)]
        if len(ours) < len(updates):
            # The auth code is per app, not per merchant: another merchant's updates are not ours to apply.
            logger.info("Clover notification: ignored %d update(s) for another merchant than %s or with odd ids",
                        len(updates) - len(ours), self.merchant_id)
        payment_ids = [u.object_id for u in ours if u.type_key == mapping.PAYMENT and u.action != "DELETE"]
        refund_ids = [u.object_id for u in ours if u.type_key == mapping.REFUND]
        try:
            with self.client() as client:
                for refund_id in dict.fromkeys(refund_ids):
                    payment_ids.append(mapping.refund_payment_id(client.refund(refund_id)))
                events = []
                for payment_id in dict.fromkeys(pid for pid in payment_ids if mapping.is_safe_object_id(pid)):
                    events += self._events_for(client, client.payment(payment_id))
        except VendorError as error:
            raise ConnectorError(f"Clover API: {error}") from error
        except mapping.UnusablePayment as error:
            raise ConnectorError(str(error)) from error
        return ParsedWebhook(events=events, vendor_event_id=self.webhook_event_id(request))

    def _events_for(self, client: CloverClient, payment: dict) -> list:
        """Fetch what the payment's events need (its order, the order's customer) and map them."""
        if str(payment.get("result") or "") not in mapping.EARNING_RESULTS | mapping.VOIDED_RESULTS:
            return []
        order_id = mapping.reference_id(payment.get("order"))
        order = client.order(order_id) if mapping.is_safe_object_id(order_id) else {}
        customer_id = mapping.first_customer_id(order)
        customer = client.customer(customer_id) if mapping.is_safe_object_id(customer_id) else None
        return mapping.payment_events(payment, order, customer)

    # -- reconciliation -------------------------------------------------------------------------------------

    def poll(self, cursor: dict) -> PollResult:
        """Payments modified and refunds created since the cursor (minus an overlap), as events.

        A refund's payment is fetched too, so its sale always comes before its reversal. One payment
        that cannot be mapped (no currency, deleted order) is logged and skipped rather than blocking
        every later poll; Clover being unreachable fails the whole poll, so the cursor stays put.
        """
        started = int(time.time() * 1000)
        payments_since = _cursor_value(cursor, "payments_modified_since", started - INITIAL_LOOKBACK_MS)
        refunds_since = _cursor_value(cursor, "refunds_created_since", started - INITIAL_LOOKBACK_MS)
        events = []
        try:
            with self.client() as client:
                payments = client.payments_modified_since(max(0, payments_since - OVERLAP_MS))
                refunds = client.refunds_created_since(max(0, refunds_since - OVERLAP_MS))
                by_id = {str(p.get("id")): p for p in payments}
                for refund in refunds:
                    payment_id = mapping.refund_payment_id(refund)
                    if mapping.is_safe_object_id(payment_id) and payment_id not in by_id:
                        by_id[payment_id] = self._fetch_skipping_missing(client, payment_id)
                for payment_id, payment in by_id.items():
                    if payment is not None:
                        events += self._events_skipping_unusable(client, payment_id, payment)
        except VendorError as error:
            raise ConnectorError(f"Clover API: {error}") from error
        new_cursor = {
            "payments_modified_since": max([payments_since, started, *_times(payments, "modifiedTime")]),
            "refunds_created_since": max([refunds_since, started, *_times(refunds, "createdTime")]),
        }
        return PollResult(events=events, cursor=new_cursor)

    def _fetch_skipping_missing(self, client: CloverClient, payment_id: str) -> dict | None:
        try:
            return client.payment(payment_id)
        except VendorError as error:
            if error.retryable:
                raise
            logger.warning("Clover poll: payment %s could not be read (%s); skipped", payment_id, error)
            return None

    def _events_skipping_unusable(self, client: CloverClient, payment_id: str, payment: dict) -> list:
        try:
            return self._events_for(client, payment)
        except mapping.UnusablePayment as error:
            logger.warning("Clover poll: payment %s skipped: %s", payment_id, error)
        except VendorError as error:
            if error.retryable:
                raise
            logger.warning("Clover poll: payment %s skipped, its order or customer could not be read (%s)",
                           payment_id, error)
        return []


def _base_url_problem(url: str) -> str:
    parts = urlsplit(url)
    if parts.query or parts.fragment or not parts.hostname:
        return "Enter the API's base URL, like https://api.clover.com."
    if is_secure_or_loopback(url):
        return ""
    # The API token travels in every request: plain HTTP only to this machine (a local test server).
    return "The Clover API must be reached over HTTPS."


def _cursor_value(cursor: dict, name: str, default: int) -> int:
    value = cursor.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _times(objects: list[dict], field: str) -> list[int]:
    return [o[field] for o in objects if isinstance(o.get(field), int) and not isinstance(o.get(field), bool)]
