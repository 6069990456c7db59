"""Klaviyo: each customer is a profile carrying their card (points, tier, number), each loyalty event
a Klaviyo event, consent a subscription on the merchant's list, erasure a deletion request.

Requests are Klaviyo's single-object calls, sent in outbox order: one profile upsert per customer per
batch (before their first event), then one call per event. Klaviyo's bulk event job is not used:
it fails the whole job when a unique_id repeats, and repeats are what at-least-once delivery sends;
the single event call records the first and ignores the rest. So a batch is small (BATCH_SIZE) and
each event gets its own result: a 4xx fails that event alone; a 429, a 5xx, a timeout or a 401 stops
the batch, and the engine retries what was not sent, never before Klaviyo's Retry-After.
"""
from urllib.parse import urlsplit

from core.vendor_urls import is_secure_or_loopback
from crm_sync.base import ConfigField, ConfigInvalid, CrmConnector, CrmRateLimited, CrmRejected, CrmUnavailable
from crm_sync.connectors.klaviyo import mapping
from crm_sync.connectors.klaviyo.client import (
    PRODUCTION_URL,
    TIMEOUT,
    KlaviyoClient,
    KlaviyoError,
    KlaviyoForbidden,
    KlaviyoRateLimited,
    KlaviyoRefused,
    KlaviyoUnauthorized,
    KlaviyoUnavailable,
)
from crm_sync.types import CardSnapshot, CustomerProfile, OutboundEvent, PushResult

# Up to 2 requests per event (profile + event): 25 events keep a push, which holds the connection's
# lock, to a few seconds and well under the profile call's 75/s burst.
BATCH_SIZE = 25
YES, NO = frozenset({"yes", "true", "1", "on"}), frozenset({"", "no", "false", "0", "off"})


class ManualErasure(Exception):
    """Klaviyo cannot be told which profile an erased customer had: a person has to delete it."""


class KlaviyoConnector(CrmConnector):
    key = "klaviyo"
    name = "Klaviyo"
    config_fields = (
        ConfigField("api_key", "Private API key", secret=True,
                    help_text="Klaviyo → Settings → API keys → Create private API key (starts with pk_). "
                              "Scopes: profiles:write, events:write; lists:write and subscriptions:write for "
                              "consent; profiles:read and data-privacy:write for erasure."),
        ConfigField("list_id", "Consent list id", required=False,
                    help_text="The Klaviyo list that email and SMS opt-ins join (Lists & segments → the list "
                              "→ Settings → List ID). Empty: consent is not sent to Klaviyo."),
        ConfigField("use_external_id", "Store Tessera's id as the profile's external_id", required=False,
                    help_text="yes: Tessera sets external_id = tessera-<customer id> and can delete the "
                              "profile when a customer is erased. Leave empty (no) if another integration "
                              "already owns external_id in this Klaviyo account."),
        ConfigField("api_base_url", "API base URL", required=False, help_text=f"Defaults to {PRODUCTION_URL}."),
    )
    batch_size = BATCH_SIZE
    timeout = TIMEOUT

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        key = str(secrets.get("api_key") or "").strip()
        if key and not key.startswith("pk_"):
            errors["api_key"] = "Use a private API key (it starts with pk_); the public site id cannot write."
        if str(config.get("use_external_id") or "").strip().lower() not in YES | NO:
            errors["use_external_id"] = "Enter yes or no."
        if any(c.isspace() for c in str(config.get("list_id") or "").strip()):
            errors["list_id"] = "A Klaviyo list id has no spaces (e.g. Xy7Pq2)."
        url = str(config.get("api_base_url") or "").strip()
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.hostname):
            errors["api_base_url"] = "Enter an absolute URL, such as https://a.klaviyo.com."
        elif url and not is_secure_or_loopback(url):
            errors["api_base_url"] = "Use https: the API key is sent with every call."
        if errors:
            raise ConfigInvalid(errors)

    def push(self, events: list[OutboundEvent]) -> list[PushResult]:
        results: list[PushResult] = []
        with KlaviyoClient(str(self.secrets.get("api_key") or ""), transport=self.transport, timeout=self.timeout,
                           base_url=str(self.config.get("api_base_url") or PRODUCTION_URL)) as klaviyo:
            sender = _Sender(klaviyo, self, _latest_cards(events))
            for index, event in enumerate(events):
                try:
                    sender.send(event)
                except (KlaviyoRefused, KlaviyoForbidden, mapping.Unidentifiable, ManualErasure) as refused:
                    results.append(PushResult(event_id=event.event_id, ok=False, error=_describe(refused),
                                              retryable=False))
                except (KlaviyoRateLimited, KlaviyoUnavailable, KlaviyoUnauthorized) as error:
                    return _stopped(results, events[index:], error)
                else:
                    results.append(PushResult.delivered(event.event_id))
        return results


class _Sender:
    """Sends one batch's events in order, remembering per batch what need not be asked twice: each
    customer's profile upsert, and endpoints the key has no scope for."""

    def __init__(self, klaviyo: KlaviyoClient, connector: KlaviyoConnector, cards: dict[int, CardSnapshot]):
        self.klaviyo, self.cards = klaviyo, cards
        self.list_id = str(connector.config.get("list_id") or "").strip()
        self.use_external_id = str(connector.config.get("use_external_id") or "").strip().lower() in YES
        self.field_mapping = connector.field_mapping
        self.profiles: dict[int, Exception | None] = {}
        self.forbidden: dict[str, KlaviyoForbidden] = {}

    def send(self, event: OutboundEvent) -> None:
        customer = event.customer
        if customer is None:
            return  # not about a customer: nothing to put on a Klaviyo profile
        if customer.erased:
            if event.event_type == mapping.CUSTOMER_ERASED:
                self._erase(customer)
            return  # nothing personal is sent for an erased customer, not even from older events
        who = mapping.identity(customer, use_external_id=self.use_external_id)
        self._upsert_profile(customer)
        if event.event_type in mapping.METRICS:
            self._call("events", self.klaviyo.create_event, mapping.event_body(event, who))
        elif event.event_type == mapping.CONSENT_CHANGED:
            self._sync_consent(customer, str(event.payload.get("channel") or ""))

    def _upsert_profile(self, customer: CustomerProfile) -> None:
        if customer.customer_id in self.profiles:
            failure = self.profiles[customer.customer_id]
            if failure is not None:
                raise failure
            return
        options = {"use_external_id": self.use_external_id, "field_mapping": self.field_mapping}
        card = self.cards.get(customer.customer_id)
        try:
            try:
                self._call("profiles", self.klaviyo.upsert_profile, mapping.profile_body(customer, card, **options))
            except KlaviyoRefused as refused:
                if refused.code != "duplicate_profile" or not (customer.email and customer.phone):
                    raise
                # Klaviyo holds this phone number on another profile: update the email's profile alone.
                self._call("profiles", self.klaviyo.upsert_profile,
                           mapping.profile_body(customer, card, with_phone=False, **options))
        except (KlaviyoRefused, KlaviyoForbidden) as refused:
            self.profiles[customer.customer_id] = refused
            raise
        self.profiles[customer.customer_id] = None

    def _sync_consent(self, customer: CustomerProfile, channel: str) -> None:
        if not self.list_id:
            return  # no list configured: the merchant keeps consent in Klaviyo their own way
        # The consent as it is now, not as the event says: a later change may be waiting behind this
        # one, and sending the current state makes every order of retries end in the right place.
        subscribed = bool(customer.consents.get(channel, False))
        body = mapping.subscription_body(customer, channel, subscribed=subscribed, list_id=self.list_id)
        if body is not None:
            self._call("subscriptions", self.klaviyo.subscribe if subscribed else self.klaviyo.unsubscribe, body)

    def _erase(self, customer: CustomerProfile) -> None:
        if not self.use_external_id:
            prop = {**mapping.PROFILE_FIELDS, **self.field_mapping}.get("customer_id") or "tessera_customer_id"
            raise ManualErasure(
                f"Customer {customer.customer_id} was erased in Tessera, but Tessera no longer holds their email "
                f"and does not own Klaviyo's external_id (use_external_id is off), so it cannot tell Klaviyo which "
                f"profile is theirs. Delete the Klaviyo profile whose {prop} is {customer.customer_id} by hand."
            )
        ids = self._call("profiles-read", self.klaviyo.profile_ids_by_external_id,
                         mapping.external_id(customer.customer_id))
        for profile_id in ids:
            self._call("deletions", self.klaviyo.request_deletion, mapping.deletion_body(profile_id))

    def _call(self, endpoint: str, call, argument):
        """A 403 means the key lacks this endpoint's scope: the rest of the batch skips the endpoint."""
        if endpoint in self.forbidden:
            raise self.forbidden[endpoint]
        try:
            return call(argument)
        except KlaviyoForbidden as error:
            self.forbidden[endpoint] = error
            raise


def _latest_cards(events: list[OutboundEvent]) -> dict[int, CardSnapshot]:
    """Each customer's card from their last event that has one (all read at send time, so current)."""
    cards = {}
    for event in events:
        if event.customer is not None and event.card is not None:
            cards[event.customer.customer_id] = event.card
    return cards


def _describe(error: Exception) -> str:
    if isinstance(error, KlaviyoUnauthorized):
        return f"Klaviyo refused the API key: {error}. Check the private key in the connection's settings."
    if isinstance(error, KlaviyoForbidden):
        return f"The Klaviyo API key lacks a scope this call needs: {error}."
    if isinstance(error, KlaviyoRateLimited):
        return f"Klaviyo rate limit: {error}."
    if isinstance(error, KlaviyoUnavailable):
        return f"Klaviyo unavailable: {error}"
    if isinstance(error, KlaviyoError):
        return f"Klaviyo refused: {error}."
    return str(error)


def _stopped(results: list[PushResult], rest: list[OutboundEvent], error: KlaviyoError) -> list[PushResult]:
    """The batch stops at `error`. If nothing was sent yet, the whole batch shares its fate (the
    contract's typed errors); otherwise what was sent stays delivered and the rest waits."""
    message = _describe(error)
    if not results:
        if isinstance(error, KlaviyoRateLimited):
            raise CrmRateLimited(message, retry_after=error.retry_after)
        if isinstance(error, KlaviyoUnavailable):
            raise CrmUnavailable(message, retry_after=error.retry_after)
        raise CrmRejected(message)
    retryable = not isinstance(error, KlaviyoUnauthorized)
    return results + [PushResult(event_id=event.event_id, ok=False, error=message, retryable=retryable,
                                 retry_after=error.retry_after) for event in rest]
