"""Stripe: payments a merchant takes with Stripe (Terminal at the counter, or online) earn points, and
their refunds take the points back.

Events: `payment_intent.succeeded` is the sale (keyed by the PaymentIntent id); `refund.created`,
`refund.updated` and `charge.refund.updated` carry one Refund each, and `charge.refunded` is turned into
one reversal per refund of the charge. Every reversal is keyed by the refund id (re_...), so a merchant
who enables both kinds of refund event still reverses each refund once.
"""
import json
import time
from urllib.parse import urlsplit

import stripe

from core.vendor_urls import is_secure_or_loopback
from pos_integration.base import (
    ConfigField,
    ConfigInvalid,
    ConnectorError,
    PermanentConnectorError,
    PosConnector,
    WebhookRejected,
)
from pos_integration.connectors.stripe import mapping
from pos_integration.connectors.stripe.client import DEFAULT_API_BASE, StripeApi
from pos_integration.types import ParsedWebhook, WebhookRequest

# Stripe's own libraries' default: long enough for clock drift, short enough that a captured
# request cannot be replayed later.
SIGNATURE_TOLERANCE_SECONDS = 300
REFUND_EVENTS = {"refund.created", "refund.updated", "charge.refund.updated"}


class StripeConnector(PosConnector):
    key = "stripe"
    name = "Stripe"
    config_fields = (
        ConfigField("webhook_secret", "Webhook signing secret", secret=True,
                    help_text="whsec_... shown on the webhook endpoint's page in the Stripe Dashboard."),
        ConfigField("api_key", "API key", secret=True,
                    help_text="A restricted key (rk_...) that can read Charges, Customers and Refunds, "
                              "or a secret key (sk_...)."),
        ConfigField("api_base", "API base URL", required=False,
                    help_text=f"Leave blank for {DEFAULT_API_BASE}."),
    )

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        webhook_secret = str(secrets.get("webhook_secret") or "").strip()
        if webhook_secret and not webhook_secret.startswith("whsec_"):
            errors["webhook_secret"] = "A Stripe webhook signing secret starts with whsec_."  # noqa: S105 - a message
        api_key = str(secrets.get("api_key") or "").strip()
        if api_key.startswith("pk_"):
            errors["api_key"] = "This is a publishable key, which cannot read payments: use rk_... or sk_...."
        elif api_key and not api_key.startswith(("sk_", "rk_")):
            errors["api_key"] = "A Stripe API key starts with rk_ (restricted) or sk_ (secret)."
        api_base = str(config.get("api_base") or "").strip()
        if api_base and not _is_allowed_api_base(api_base):
            errors["api_base"] = "Use an https:// URL (http:// only for a local test server)."
        if errors:
            raise ConfigInvalid(errors)

    def verify_webhook(self, request: WebhookRequest) -> None:
        header = request.header("stripe-signature")
        if not header:
            raise WebhookRejected("Missing Stripe-Signature header.")
        secret = str(self.secrets.get("webhook_secret") or "").strip()
        try:
            stripe.WebhookSignature.verify_header(request.body, header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejected(f"Stripe signature: {error.user_message or error}") from None
        except UnicodeDecodeError:
            raise WebhookRejected("The body is not UTF-8, so Stripe did not sign it.") from None
        # The SDK only bounds the past; a timestamp far in the future is as suspect as a stale one.
        if _signed_at(header) > time.time() + SIGNATURE_TOLERANCE_SECONDS:
            raise WebhookRejected("Stripe signature: timestamp is in the future.")

    def webhook_event_id(self, request: WebhookRequest) -> str:
        event_id = json.loads(request.body).get("id")
        return event_id if isinstance(event_id, str) else ""

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        try:
            event = _snapshot_event(request.body)
            event_id = event.get("id") if isinstance(event.get("id"), str) else ""
            return ParsedWebhook(events=self._events(event), vendor_event_id=event_id)
        except ValueError as error:  # a signed payload that will never parse: retrying cannot help
            raise PermanentConnectorError(f"Malformed Stripe event: {error}") from error

    def _events(self, event: dict) -> list:
        kind = event.get("type") if isinstance(event.get("type"), str) else ""
        stripe_object = event["data"]["object"]
        if kind == "payment_intent.succeeded":
            return self._sale(stripe_object)
        if kind == "charge.refunded":
            return self._refunds_of_charge(stripe_object)
        if kind in REFUND_EVENTS:
            return [e for e in [mapping.refund_from_refund(stripe_object)] if e is not None]
        return []  # an event type the merchant enabled that earns nothing: acknowledged, ignored

    def _sale(self, intent: dict) -> list:
        if not mapping.is_collected(intent):
            return []
        charge, customer = _expanded(intent.get("latest_charge")), _expanded(intent.get("customer"))
        # The charge holds the receipt number a customer can claim an unmatched sale with. The customer
        # (email, phone, card metadata) is only needed when the POS did not put the card on the sale.
        charge_to_fetch = mapping.object_id(intent.get("latest_charge")) if charge is None else ""
        needs_customer = customer is None and not mapping.card_number_in(intent)
        customer_to_fetch = mapping.object_id(intent.get("customer")) if needs_customer else ""
        if charge_to_fetch or customer_to_fetch:
            with self._api() as api:
                charge = api.charge(charge_to_fetch) if charge_to_fetch else charge
                customer = api.customer(customer_to_fetch) if customer_to_fetch else customer
        return [mapping.purchase_from_payment_intent(intent, charge=charge, customer=customer)]

    def _refunds_of_charge(self, charge: dict) -> list:
        refunds = mapping.embedded_refunds(charge)
        if refunds is None:
            with self._api() as api:
                refunds = api.refunds_of_charge(charge.get("id"))
        return mapping.refunds_from_charge(charge, refunds)

    def _api(self) -> StripeApi:
        api_key = str(self.secrets.get("api_key") or "").strip()
        if not api_key:
            raise ConnectorError("The connection has no Stripe API key to read charges and customers with.")
        return StripeApi(api_key, api_base=str(self.config.get("api_base") or "").strip() or DEFAULT_API_BASE)


def _snapshot_event(body: bytes) -> dict:
    event = json.loads(body)
    if not isinstance(event, dict) or event.get("object") != "event":
        # Thin (v2) event notifications carry no object; this endpoint must send snapshot events.
        raise ValueError("not a snapshot event (thin v2 events are not supported)")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise ValueError(f"event {event.get('id')} has no data.object")
    return event


def _expanded(value) -> dict | None:
    return value if isinstance(value, dict) else None


def _signed_at(header: str) -> int:
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t":  # the same reading as the SDK's, which has just accepted this header
            return int(value)
    return 0


def _is_allowed_api_base(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password:
        return False
    return is_secure_or_loopback(url)
