"""The contract every POS connector implements.

A connector is a declared adapter (see STYLE.md): a key, a display name, a config schema with its
secret fields marked, and the vendor methods. It reads its connection's config and secrets, may
call the vendor's API, and returns `pos_integration.types` dataclasses. It never touches our
database: `pos_integration.intake` applies what it returns.
"""
from core.plugins import ConfigField, ConfigInvalid, check_config_fields
from pos_integration.types import ParsedWebhook, PollResult, WebhookRequest

__all__ = ["ConfigField", "ConfigInvalid", "ConnectorError", "PermanentConnectorError", "PosConnector",
           "SaleNotSeen", "WebhookRejected"]


class WebhookRejected(Exception):
    """The webhook is not verified (bad or missing signature, stale timestamp...). Answered 401."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ConnectorError(Exception):
    """A verified webhook or poll could not be turned into events (vendor API down, odd payload).
    The delivery is marked failed and can be replayed. `permanent`: the same input will always
    fail (a malformed payload), so the automatic retries are skipped. `code`, when set, is kept as
    the delivery's failure code so a later step can find the deliveries failed for that reason."""

    permanent = False
    code = ""


class PermanentConnectorError(ConnectorError):
    permanent = True


class SaleNotSeen(ConnectorError):
    """A refund for a sale not applied yet. Retried as usual (the sale may be seconds behind); when
    the sale was held because the merchant's earning was paused, the replay after its next payment
    applies the refund again, after the held sales, found by this code."""

    code = "sale_not_seen"


class PosConnector:
    key: str = ""
    name: str = ""
    config_fields: tuple[ConfigField, ...] = ()
    # Headers whose values are secrets (a static shared code, say): masked in the stored delivery.
    secret_headers: tuple[str, ...] = ()
    supports_polling: bool = False

    def __init__(self, *, config: dict, secrets: dict, webhook_url: str = ""):
        self.config = config
        self.secrets = secrets
        self.webhook_url = webhook_url

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        """Raise ConfigInvalid({field: message}) for a missing required or malformed setting.
        The base class checks required fields; connectors add their own checks."""
        check_config_fields(cls.config_fields, config, secrets)

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise WebhookRejected unless the request is authentic. Runs on the raw bytes, first."""
        raise NotImplementedError

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        """Turn a verified webhook into events. May fetch the authoritative object from the vendor
        (raise ConnectorError when it cannot). Runs in a Celery task, not in the vendor's request."""
        raise NotImplementedError

    def webhook_event_id(self, request: WebhookRequest) -> str:
        """The vendor's id for this delivery, read cheaply at intake (header or body). A unique index
        keeps one owning delivery per (connection, id): a repeat is kept as a duplicate and never
        processed. Events are also keyed by the sale's and refund's own ids, so a connector that
        returns "" here still earns once."""
        return ""

    def poll(self, cursor: dict) -> PollResult:
        """Fetch what happened since `cursor` (reconciliation for vendors whose webhooks can be lost)."""
        raise NotImplementedError
