"""The contract every CRM connector implements.

A connector declares a key, a display name, its config fields (secrets marked), the largest batch
the CRM accepts, and `push`: send a batch, report one `PushResult` per event. It may raise for the
whole batch: `CrmRateLimited` (429, or Salesforce's 403 REQUEST_LIMIT_EXCEEDED) with the CRM's
Retry-After, `CrmUnavailable` (5xx, timeouts: try again later), `CrmRejected` (the CRM refuses for
good: bad credentials, a malformed request). It never touches our database; `crm_sync.delivery`
decides what happens to each event. Inbound (consent from the CRM) is optional.
"""
from core.plugins import ConfigField, ConfigInvalid, check_config_fields
from crm_sync.types import ConsentChange, InboundRequest, OutboundEvent, PushResult

__all__ = ["ConfigField", "ConfigInvalid", "CrmConnector", "CrmRateLimited", "CrmRejected", "CrmUnavailable",
           "InboundRejected"]


class CrmError(Exception):
    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CrmRateLimited(CrmError):
    """Slow down: wait at least `retry_after` seconds (when the CRM said) before the next try."""


class CrmUnavailable(CrmError):
    """The CRM is down or timed out: try again with backoff."""


class CrmRejected(CrmError):
    """The CRM refuses the whole batch for good (4xx other than rate limits): dead-letter it."""


class InboundRejected(Exception):
    """An inbound webhook is not verified. Answered 401, nothing changed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CrmConnector:
    key: str = ""
    name: str = ""
    config_fields: tuple[ConfigField, ...] = ()
    batch_size: int = 100  # the most events one `push` gets: the CRM's documented batch limit
    supports_inbound: bool = False

    def __init__(self, *, config: dict, secrets: dict, field_mapping: dict | None = None, inbound_url: str = "",
                 transport=None):
        """`transport`: an httpx transport for tests (a fake CRM server is reached over a real socket
        anyway; this only lets a test inject timeouts). `field_mapping`: our field -> CRM property."""
        self.config, self.secrets = config, secrets
        self.field_mapping = field_mapping or {}
        self.inbound_url, self.transport = inbound_url, transport

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        check_config_fields(cls.config_fields, config, secrets)

    def push(self, events: list[OutboundEvent]) -> list[PushResult]:
        """Send `events` (at most `batch_size`, in outbox order). One result per event, same order."""
        raise NotImplementedError

    def verify_inbound(self, request: InboundRequest) -> None:
        """Raise InboundRejected unless the request is authentic (raw bytes, constant-time compare)."""
        raise InboundRejected("This connector takes no inbound webhooks.")

    def parse_inbound(self, request: InboundRequest) -> list[ConsentChange]:
        return []
