"""Square: completed payments earn, completed refunds reverse, through Square's v2 webhooks.

Verification follows Square's documented scheme (x-square-hmacsha256-signature, HMAC-SHA256 over
the notification URL followed by the raw body). Square signs no timestamp and retries for up to 72
hours, so there is no freshness window to enforce: repeats are absorbed by the event_id on the
delivery and, for money, by the payment and refund ids the intake keys on.
"""
import base64
import hashlib
import hmac
import time

from core.vendor_urls import url_problem
from pos_integration.base import (
    ConfigField,
    ConfigInvalid,
    ConnectorError,
    PermanentConnectorError,
    PosConnector,
    WebhookRejected,
)
from pos_integration.connectors.square import mapping
from pos_integration.connectors.square.client import PRODUCTION_URL, SquareApiError, SquareClient
from pos_integration.matching import card_number_in
from pos_integration.types import CustomerHint, ParsedWebhook, WebhookRequest

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
LEGACY_SIGNATURE_HEADER = "x-square-signature"


def square_signature(signature_key: str, notification_url: str, body: bytes) -> str:
    """base64(HMAC-SHA256(key, notification URL + raw body)), as Square computes it."""
    digest = hmac.new(signature_key.encode(), notification_url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class SquareConnector(PosConnector):
    key = "square"
    name = "Square"
    config_fields = (
        ConfigField("signature_key", "Webhook signature key", secret=True,
                    help_text="From the webhook subscription in the Square Developer Console."),
        ConfigField("access_token", "Access token", secret=True,
                    help_text="Production access token (or OAuth token) with CUSTOMERS_READ and PAYMENTS_READ."),
        ConfigField("notification_url", "Notification URL", required=False,
                    help_text="Exactly as entered in the subscription, if it is not Tessera's own webhook URL."),
        ConfigField("api_base_url", "API base URL", required=False,
                    help_text=f"Defaults to {PRODUCTION_URL}; https://connect.squareupsandbox.com for the sandbox."),
        ConfigField("location_id", "Location id", required=False,
                    help_text="Only sales and refunds at this Square location earn or reverse points."),
    )
    secret_headers = ()  # Square's signature is a per-request HMAC, not a reusable secret
    # Tests replace this to observe Retry-After waits without sleeping.
    sleep = staticmethod(time.sleep)

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        for name, https_only in (("notification_url", False), ("api_base_url", True)):
            value = str(config.get(name) or "").strip()
            problem = url_problem(value, https_only=https_only) if value else ""
            if problem:
                errors[name] = problem
        if errors:
            raise ConfigInvalid(errors)

    # -- webhooks ---------------------------------------------------------------------------------------

    def verify_webhook(self, request: WebhookRequest) -> None:
        signature = (request.header(SIGNATURE_HEADER) or "").strip()
        if not signature:
            if request.header(LEGACY_SIGNATURE_HEADER):
                raise WebhookRejected("Only the legacy x-square-signature (HMAC-SHA1) header; not accepted.")
            raise WebhookRejected(f"Missing {SIGNATURE_HEADER} header.")
        expected = square_signature(self.secrets.get("signature_key", ""), request.url, request.body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise WebhookRejected("The signature does not match the body and the configured notification URL.")

    def webhook_event_id(self, request: WebhookRequest) -> str:
        return str(mapping.read_notification(request.body).get("event_id") or "")

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        notification = mapping.read_notification(request.body)
        event_type = notification.get("type") if isinstance(notification.get("type"), str) else ""
        event_id = str(notification.get("event_id") or "")
        if event_type in mapping.PAYMENT_EVENTS:
            events = self._payment_events(mapping.event_object(notification, "payment"))
        elif event_type in mapping.REFUND_EVENTS:
            events = self._refund_events(mapping.event_object(notification, "refund"))
        else:
            events = []  # orders, inventory, customers...: a sale is read from its payment alone
        return ParsedWebhook(events=events, vendor_event_id=event_id)

    # -- events -----------------------------------------------------------------------------------------

    def _at_our_location(self, square_object: dict) -> bool:
        wanted = str(self.config.get("location_id") or "").strip()
        return not wanted or square_object.get("location_id") == wanted

    def _payment_events(self, payment: dict) -> list:
        # APPROVED (delayed capture), PENDING, CANCELED and FAILED payments have not taken money.
        if payment.get("status") != mapping.COMPLETED or not self._at_our_location(payment):
            return []
        amount, _ = mapping.money(payment.get("amount_money"), f"Payment {payment['id']} amount_money")
        if amount <= 0:
            return []  # a fully discounted sale: nothing to earn on
        return [mapping.purchase_completed(payment, self._customer_hint(payment))]

    def _refund_events(self, refund: dict) -> list:
        # PENDING refunds can still end REJECTED or FAILED: only a completed one gives money back.
        if refund.get("status") != mapping.COMPLETED or not self._at_our_location(refund):
            return []
        refunded, _ = mapping.money(refund.get("amount_money"), f"Refund {refund['id']} amount_money")
        payment_id = refund.get("payment_id")
        if not payment_id or not isinstance(payment_id, str):
            raise PermanentConnectorError(f"Refund {refund['id']} names no payment_id.")
        # The refund does not say how much of the payment was tip; the payment does.
        payment = self._call(lambda square: square.get_payment(payment_id))
        goods = mapping.goods_share(refunded, payment)
        return [mapping.purchase_refunded(refund, goods)] if goods > 0 else []

    def _customer_hint(self, payment: dict) -> CustomerHint:
        """Who paid: a card number in the note, else Square's customer (its reference id, email and
        phone), else the buyer's email on the payment."""
        customer_id = str(payment.get("customer_id") or "")
        buyer_email = str(payment.get("buyer_email_address") or "")
        number = card_number_in(payment.get("note"))
        if number:
            return CustomerHint(card_number=number, vendor_customer_id=customer_id, email=buyer_email)
        customer = self._call(lambda square: square.retrieve_customer(customer_id)) if customer_id else None
        customer = customer or {}
        return CustomerHint(
            card_number=card_number_in(customer.get("reference_id")),
            vendor_customer_id=customer_id,
            email=str(customer.get("email_address") or buyer_email),
            phone=str(customer.get("phone_number") or ""),
        )

    def _call(self, call):
        """Run one Square API call. A failure fails the delivery, retried later and replayable: Square
        may be back, or the merchant may have fixed the token."""
        client = SquareClient(
            self.secrets.get("access_token", ""),
            base_url=str(self.config.get("api_base_url") or PRODUCTION_URL),
            sleep=self.sleep,
        )
        try:
            with client as square:
                return call(square)
        except SquareApiError as error:
            raise ConnectorError(f"Square API: {error}") from error
