"""The generic POS connector: Tessera's own documented JSON webhook, for anything that can call one.

A till, an e-commerce platform, Zapier or a small script sends `purchase.completed`,
`purchase.refunded` and `customer.identified` events signed by the Standard Webhooks scheme with
the connection's `whsec_...` secret. There is no vendor API to ask, so the body is the authority:
it is signed, fresh (five minutes) and read strictly (see mapping.py and README.md).
"""
from core import standard_webhooks
from pos_integration.base import ConfigField, ConfigInvalid, PosConnector, WebhookRejected
from pos_integration.connectors.generic.mapping import parse_event
from pos_integration.types import ParsedWebhook, WebhookRequest


class GenericConnector(PosConnector):
    key = "generic"
    name = "Generic webhook"
    config_fields = (
        ConfigField(
            "signing_secret", "Signing secret", secret=True,
            help_text="whsec_ followed by 24 to 64 random bytes in base64, shared with the sender. "
                      "Generate one with core.standard_webhooks.generate_secret().",
        ),
    )

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        if "signing_secret" not in errors:
            try:
                standard_webhooks.decode_secret(str(secrets["signing_secret"]).strip())
            except ValueError as problem:
                errors["signing_secret"] = str(problem)
        if errors:
            raise ConfigInvalid(errors)

    def _secret(self) -> str:
        return str(self.secrets.get("signing_secret") or "").strip()

    def verify_webhook(self, request: WebhookRequest) -> None:
        try:
            standard_webhooks.verify(self._secret(), request.headers, request.body, now=request.received_at)
        except standard_webhooks.SignatureInvalid as invalid:
            raise WebhookRejected(invalid.reason) from None
        except ValueError:  # only a stored secret that predates validation gets here
            raise WebhookRejected("The connection's signing secret is malformed.") from None

    def webhook_event_id(self, request: WebhookRequest) -> str:
        return request.header(standard_webhooks.ID_HEADER) or ""

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        """Raises PayloadInvalid (a ConnectorError): the delivery fails with the field named."""
        return ParsedWebhook(events=[parse_event(request.body)], vendor_event_id=self.webhook_event_id(request))
