"""Shopify POS sales and refunds, received as Admin API webhooks (orders/create, orders/paid,
refunds/create).

Verification: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(client secret, raw body)), compared in
constant time; a hex digest of the right HMAC is refused, so no lenient decoding hides a bug. One app
serves many shops with the same secret, so `X-Shopify-Shop-Domain` must also name this connection's
shop: a validly signed delivery from another merchant's shop must not credit this one. Shopify signs
no timestamp, so there is no replay window; replays land once because events are keyed by order and
refund id, and `X-Shopify-Triggered-At` stays in the stored delivery headers for the audit.
"""
import base64
import hashlib
import hmac
import re

from pos_integration.base import ConfigField, ConfigInvalid, PosConnector, WebhookRejected
from pos_integration.connectors.shopify import mapping
from pos_integration.types import ParsedWebhook, WebhookRequest

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SHOP_HEADER = "X-Shopify-Shop-Domain"
TOPIC_HEADER = "X-Shopify-Topic"
EVENT_ID_HEADER = "X-Shopify-Event-Id"

ORDER_TOPICS = frozenset({"orders/create", "orders/paid"})
REFUND_TOPIC = "refunds/create"

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_flag(value) -> bool | None:
    """A yes/no setting as the admin form or an API client sends it; None when it is neither."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def shopify_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class ShopifyConnector(PosConnector):
    key = "shopify"
    name = "Shopify POS"
    config_fields = (
        ConfigField("shop_domain", "Shop domain", help_text="The shop's xxx.myshopify.com domain."),
        ConfigField(
            "client_secret", "Webhook signing secret", secret=True,
            help_text="The app's client secret, or the signing key shown under Settings > Notifications > "
                      "Webhooks for webhooks created in the Shopify admin.",
        ),
        ConfigField(
            "previous_client_secret", "Previous signing secret", secret=True, required=False,
            help_text="While rotating the secret: Shopify may sign with the old one for up to an hour.",
        ),
        ConfigField(
            "pos_only", "Only POS sales earn", required=False,
            help_text="Default yes: online orders of the same shop (source_name other than pos) earn nothing.",
        ),
    )

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as error:
            errors.update(error.errors)
        domain = str(config.get("shop_domain") or "").strip()
        if domain and not SHOP_DOMAIN.match(domain.lower()):
            errors["shop_domain"] = "Enter the shop's myshopify.com domain, e.g. demo-store.myshopify.com."
        if config.get("pos_only") not in (None, "") and parse_flag(config["pos_only"]) is None:
            errors["pos_only"] = "Enter yes or no."
        if errors:
            raise ConfigInvalid(errors)

    @property
    def shop_domain(self) -> str:
        return str(self.config.get("shop_domain") or "").strip().lower()

    @property
    def pos_only(self) -> bool:
        value = self.config.get("pos_only")
        return True if value in (None, "") else parse_flag(value) is not False

    def signing_secrets(self) -> list[str]:
        names = ("client_secret", "previous_client_secret")
        return [self.secrets[name] for name in names if str(self.secrets.get(name) or "").strip()]

    def verify_webhook(self, request: WebhookRequest) -> None:
        received = (request.header(HMAC_HEADER) or "").strip()
        if not received:
            raise WebhookRejected(f"Missing {HMAC_HEADER}.")
        expected = [shopify_signature(secret, request.body) for secret in self.signing_secrets()]
        # Every secret is compared, so the time taken says nothing about which one matched.
        matches = [hmac.compare_digest(signature.encode(), received.encode()) for signature in expected]
        if not any(matches):
            raise WebhookRejected("The Shopify HMAC does not match the body.")
        shop = (request.header(SHOP_HEADER) or "").strip().lower()
        if not shop:
            raise WebhookRejected(f"Missing {SHOP_HEADER}.")
        if shop != self.shop_domain:
            raise WebhookRejected(f"The delivery is from {shop[:60]}, not this connection's shop.")

    def webhook_event_id(self, request: WebhookRequest) -> str:
        return (request.header(EVENT_ID_HEADER) or "").strip()

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        topic = (request.header(TOPIC_HEADER) or "").strip().lower()
        if topic in ORDER_TOPICS:
            events = mapping.purchase_events(
                mapping.load(request.body), pos_only=self.pos_only, received_at=request.received_at
            )
        elif topic == REFUND_TOPIC:
            events = mapping.refund_events(mapping.load(request.body), received_at=request.received_at)
        else:
            events = []  # a topic subscribed by mistake (orders/updated...) changes nothing
        return ParsedWebhook(events=events, vendor_event_id=self.webhook_event_id(request))
