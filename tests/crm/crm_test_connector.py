"""A stand-in CRM connector for the delivery engine's tests and benchmark (key "testcrm").

It speaks `tests.crm.fake_crm`'s API: batches of at most 100 events as JSON, Bearer authentication,
one result per event. The engine's tests use it instead of a vendor connector so that they test the
engine alone. Like a real connector it keeps its HTTP connections open between batches, always has a
timeout, never retries by itself (the engine owns retries) and maps failures to the typed errors:
429 -> CrmRateLimited with Retry-After, 5xx and timeouts -> CrmUnavailable, other 4xx -> CrmRejected.
"""
import threading

import httpx

from core.http import parse_retry_after
from crm_sync.base import ConfigField, ConfigInvalid, CrmConnector, CrmRateLimited, CrmRejected, CrmUnavailable
from crm_sync.types import OutboundEvent, PushResult

PATH = "/v1/events/batch"
MAX_BATCH = 100  # the fake CRM's documented limit
DEFAULT_TIMEOUT_SECONDS = 10.0

_clients: dict[tuple[str, float], httpx.Client] = {}
_clients_lock = threading.Lock()


def _shared_client(base_url: str, timeout: float) -> httpx.Client:
    """One keep-alive client per CRM and timeout for the process: the engine builds a connector per
    batch, and a new TCP connection per batch would cost more than the batch."""
    with _clients_lock:
        client = _clients.get((base_url, timeout))
        if client is None:
            client = _clients[(base_url, timeout)] = httpx.Client(base_url=base_url, timeout=timeout)
        return client


class StandInCrmConnector(CrmConnector):
    key = "testcrm"
    name = "Test CRM (stand-in for tests)"
    batch_size = MAX_BATCH
    config_fields = (
        ConfigField("base_url", "Base URL"),
        ConfigField("api_key", "API key", secret=True),
        ConfigField("batch_size", "Events per request (1 to 100)", required=False),
        ConfigField("timeout_seconds", "Request timeout in seconds", required=False),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.batch_size = int(self.config.get("batch_size") or MAX_BATCH)
        self.timeout = float(self.config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        super().validate_config(config, secrets)
        errors = {}
        if not str(config["base_url"]).startswith(("http://", "https://")):
            errors["base_url"] = "An http:// or https:// URL."
        size = str(config.get("batch_size") or MAX_BATCH)
        if not size.isdigit() or not 1 <= int(size) <= MAX_BATCH:
            errors["batch_size"] = f"A whole number from 1 to {MAX_BATCH}."
        try:
            if float(config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS) <= 0:
                raise ValueError
        except ValueError:
            errors["timeout_seconds"] = "A number of seconds above zero."
        if errors:
            raise ConfigInvalid(errors)

    def _client(self) -> httpx.Client:
        if self.transport is not None:
            return httpx.Client(base_url=self.config["base_url"], timeout=self.timeout, transport=self.transport)
        return _shared_client(self.config["base_url"], self.timeout)

    def push(self, events: list[OutboundEvent]) -> list[PushResult]:
        results = []
        for start in range(0, len(events), MAX_BATCH):
            results += self._post([_event_body(e) for e in events[start:start + MAX_BATCH]])
        return results

    def _post(self, bodies: list[dict]) -> list[PushResult]:
        headers = {"Authorization": f"Bearer {self.secrets['api_key']}"}
        try:
            response = self._client().post(PATH, json={"events": bodies}, headers=headers)
        except httpx.TimeoutException as error:
            raise CrmUnavailable(f"No answer within {self.timeout:g} s ({type(error).__name__}).") from error
        except httpx.TransportError as error:
            raise CrmUnavailable(f"Cannot reach the CRM: {type(error).__name__}.") from error
        status, retry_after = response.status_code, parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            raise CrmRateLimited("The CRM answered 429.", retry_after=retry_after)
        if status >= 500:
            raise CrmUnavailable(f"The CRM answered {status}.", retry_after=retry_after)
        if status >= 400:
            raise CrmRejected(f"The CRM answered {status}: {response.text[:200]}")
        answered = {str(r.get("id")): r for r in response.json().get("results", [])}
        return [_result(body["id"], answered.get(str(body["id"]))) for body in bodies]


def _result(event_id: int, answer: dict | None) -> PushResult:
    if answer is None:
        return PushResult(event_id=event_id, ok=False, error="The CRM returned no result for this event.")
    if answer.get("status") == "ok":
        return PushResult.delivered(event_id)
    return PushResult(event_id=event_id, ok=False, error=str(answer.get("error") or "refused"),
                      retryable=bool(answer.get("retryable", False)))


def _event_body(event: OutboundEvent) -> dict:
    customer, card = event.customer, event.card
    return {
        "id": event.event_id,
        "type": event.event_type,
        "occurred_at": event.occurred_at.isoformat(),
        "customer": None if customer is None else {"id": customer.customer_id, "erased": customer.erased,
                                                   "email": "" if customer.erased else customer.email},
        "card": None if card is None else {"number": card.number, "balance": card.balance,
                                           "lifetime_points": card.lifetime_points, "tier": card.tier},
        "payload": event.payload,
    }


DOTTED_PATH = "tests.crm.crm_test_connector.StandInCrmConnector"


def connect(merchant, crm_url: str, api_key: str, *, event_types=(), max_attempts: int = 8, **config):
    """A merchant's connection to the fake CRM at `crm_url`, through the real connection service."""
    from crm_sync.connections import create_connection

    values = {"base_url": crm_url, "api_key": api_key, **{k: str(v) for k, v in config.items()}}
    return create_connection(merchant, StandInCrmConnector.key, "Fake CRM", values, event_types=event_types,
                             max_attempts=max_attempts)
