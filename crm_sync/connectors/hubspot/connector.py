"""HubSpot: loyalty state on contacts, purchases and redemptions as custom events, email consent back.

Outbound per batch (at most 100 events, HubSpot's batch limit): one contacts batch upsert by email
carrying each contact's latest card snapshot, then one custom-events batch for the event-like records.
Whole-request trouble raises for the whole batch (429 -> CrmRateLimited, 5xx and timeouts ->
CrmUnavailable, 401/403 -> CrmRejected); a record HubSpot refuses fails alone (see `batches`).
Inbound: contact property change webhooks (v3 signature) on the opt-in or opt-out property.
"""

from core.vendor_urls import url_problem
from crm_sync.base import ConfigField, ConfigInvalid, CrmConnector
from crm_sync.connectors.hubspot import inbound, mapping
from crm_sync.connectors.hubspot.batches import Failure, send_isolating
from crm_sync.connectors.hubspot.client import BATCH_LIMIT, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, HubSpotClient
from crm_sync.types import ConsentChange, InboundRequest, OutboundEvent, PushResult


class HubSpotConnector(CrmConnector):
    key = "hubspot"
    name = "HubSpot"
    config_fields = (
        ConfigField("access_token", "Private app access token", secret=True,
                    help_text="Scopes: crm.objects.contacts.read and .write; analytics.behavioral_events.send "
                              "for custom events."),
        ConfigField("client_secret", "App client secret", secret=True, required=False,
                    help_text="Verifies HubSpot's webhooks (v3 signatures). Needed only if HubSpot sends webhooks."),
        ConfigField("hub_id", "Hub ID", required=False,
                    help_text="The HubSpot account id. Set it to send purchases and redemptions as custom events "
                              "(Enterprise); without it only contacts are updated."),
        ConfigField("api_base_url", "API base URL", required=False, help_text=f"Defaults to {DEFAULT_BASE_URL}."),
        ConfigField("inbound_url", "Webhook target URL", required=False,
                    help_text="Exactly as entered in HubSpot, if it is not Tessera's own /hooks/crm/<id>/ URL."),
    )
    batch_size = BATCH_LIMIT
    supports_inbound = True
    timeout = DEFAULT_TIMEOUT  # tests shorten it to see a timeout without waiting ten seconds

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        for name, https_only in (("api_base_url", True), ("inbound_url", False)):
            value = str(config.get(name) or "").strip()
            problem = url_problem(value, https_only=https_only) if value else ""
            if problem:
                errors[name] = problem
        hub_id = str(config.get("hub_id") or "").strip()
        if hub_id and not hub_id.isdigit():
            errors["hub_id"] = "The Hub ID is a number (HubSpot: account menu, next to the account name)."
        if errors:
            raise ConfigInvalid(errors)

    def client(self) -> HubSpotClient:
        return HubSpotClient(self.secrets.get("access_token", ""), base_url=self.config.get("api_base_url") or "",
                             timeout=self.timeout, transport=self.transport)

    def push(self, events: list[OutboundEvent]) -> list[PushResult]:
        plan = mapping.build_plan(
            events, properties=mapping.resolve(self.field_mapping, mapping.CONTACT_PROPERTIES),
            event_names=mapping.resolve(self.field_mapping, dict(mapping.CUSTOM_EVENTS.values())),
            hub_id=str(self.config.get("hub_id") or "").strip(),
        )
        with self.client() as client:
            contacts = list(plan.contacts.items())
            refused = send_isolating(client.upsert_contacts, contacts, limit=BATCH_LIMIT)
            contact_failures = {contacts[i][0]: failure for i, failure in refused.items()}
            sendable = [(event_id, occurrence) for event_id, email, occurrence in plan.occurrences
                        if email not in contact_failures]
            refused = send_isolating(client.send_events, [o for _, o in sendable], limit=BATCH_LIMIT)
            event_failures = {sendable[i][0]: failure for i, failure in refused.items()}
        return [_result(event.event_id, contact_failures.get(plan.email_of.get(event.event_id, "")),
                        event_failures.get(event.event_id)) for event in events]

    def verify_inbound(self, request: InboundRequest) -> None:
        inbound.verify_v3(request, self.secrets.get("client_secret", ""))

    def parse_inbound(self, request: InboundRequest) -> list[ConsentChange]:
        """HubSpot's property change webhooks carry the contact id, not the email: read it from HubSpot."""
        names = mapping.resolve(self.field_mapping, {**mapping.CONTACT_PROPERTIES, **mapping.INBOUND_PROPERTIES})
        signals = inbound.consent_signals(request.body, opt_in_property=names["email_opt_in"],
                                          opt_out_property=names["email_opt_out"])
        if not signals:
            return []
        changes = []
        with self.client() as client:
            for object_id, opted_in in signals:
                email = client.contact_email(object_id)
                if email:
                    changes.append(ConsentChange(channel="email", opted_in=opted_in, email=email))
        return changes


def _result(event_id: int, *failures: Failure | None) -> PushResult:
    failure = next((f for f in failures if f is not None), None)
    if failure is None:
        return PushResult.delivered(event_id)
    return PushResult(event_id=event_id, ok=False, error=failure.error, retryable=failure.retryable)
