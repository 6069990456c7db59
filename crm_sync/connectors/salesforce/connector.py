"""Salesforce: loyalty state on Contacts and a timeline of loyalty events, through sObject Collections.

A batch becomes at most two kinds of upsert calls (Contacts first, so the event records' lookup by
external id finds them), each of at most 200 records. Salesforce answers per record; an event is
delivered when every record it needs was written. Per-record errors are the merchant's org saying no
(a missing field, a validation rule), so they are final, except a row lock held by someone else.
"""
import re
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from core.vendor_urls import is_secure_or_loopback
from crm_sync.base import ConfigField, ConfigInvalid, CrmConnector, CrmRejected
from crm_sync.connectors.salesforce import mapping
from crm_sync.connectors.salesforce.auth import CLIENT_CREDENTIALS, DEFAULT_LOGIN_URL, FLOWS, JWT_BEARER, Credentials
from crm_sync.connectors.salesforce.client import COLLECTION_LIMIT, DEFAULT_API_VERSION, DEFAULT_TIMEOUT, SalesforceApi
from crm_sync.types import OutboundEvent, PushResult

GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
_API_VERSION = re.compile(r"^v(\d+)\.0$")
MIN_API_VERSION = 46  # sObject Collections upsert arrived in 46.0
RETRYABLE_RECORD_ERRORS = frozenset({"UNABLE_TO_LOCK_ROW"})


class SalesforceConnector(CrmConnector):
    key = "salesforce"
    name = "Salesforce"
    batch_size = COLLECTION_LIMIT  # one event gives at most one record of each kind: one call each
    config_fields = (
        ConfigField("auth_flow", "Authentication flow",
                    help_text="jwt_bearer (certificate on the connected app) or client_credentials."),
        ConfigField("consumer_key", "Consumer key", help_text="The connected app's consumer key (client id)."),
        ConfigField("login_url", "Login URL", required=False,
                    help_text=f"{DEFAULT_LOGIN_URL} by default; https://test.salesforce.com for a sandbox; "
                              "your My Domain URL for client credentials."),
        ConfigField("username", "Integration username", required=False,
                    help_text="JWT bearer: the pre-authorised user the integration acts as."),
        ConfigField("private_key", "Private key (PEM)", secret=True, required=False,
                    help_text="JWT bearer: the RSA key whose certificate is uploaded to the connected app."),
        ConfigField("client_secret", "Consumer secret", secret=True, required=False,
                    help_text="Client credentials: the connected app's consumer secret."),
        ConfigField("api_version", "API version", required=False,
                    help_text=f"{DEFAULT_API_VERSION} by default; v{MIN_API_VERSION}.0 or later."),
        ConfigField("instance_url", "Instance URL", required=False,
                    help_text="Leave empty: the instance URL Salesforce returns with the token is used."),
    )
    timeout: httpx.Timeout = DEFAULT_TIMEOUT  # tests shorten it to see timeouts quickly

    @classmethod
    def validate_config(cls, config: dict, secrets: dict) -> None:
        errors = {}
        try:
            super().validate_config(config, secrets)
        except ConfigInvalid as invalid:
            errors.update(invalid.errors)
        flow = _text(config, "auth_flow")
        if flow and flow not in FLOWS:
            errors["auth_flow"] = f"Choose {' or '.join(FLOWS)}."
        if flow == JWT_BEARER:
            errors.update(_jwt_problems(config, secrets))
        if flow == CLIENT_CREDENTIALS:
            errors.update(_client_credentials_problems(config, secrets))
        for name in ("login_url", "instance_url"):
            problem = _url_problem(_text(config, name)) if _text(config, name) else ""
            if problem:
                errors[name] = problem
        version = _API_VERSION.match(_text(config, "api_version") or DEFAULT_API_VERSION)
        if not version or int(version.group(1)) < MIN_API_VERSION:
            errors["api_version"] = f"Write it like {DEFAULT_API_VERSION}; v{MIN_API_VERSION}.0 or later."
        if errors:
            raise ConfigInvalid(errors)

    @classmethod
    def validate_field_mapping(cls, field_mapping: dict) -> None:
        """Raise ConfigInvalid for unknown names or bad API names, for a form to check before saving."""
        mapping.FieldMap.from_overrides(field_mapping)

    def push(self, events: list[OutboundEvent]) -> list[PushResult]:
        try:
            fields = mapping.FieldMap.from_overrides(self.field_mapping)
        except ConfigInvalid as error:
            raise CrmRejected(f"The connection's field mapping is not valid: {error}") from error
        plan = mapping.plan(events, fields)
        with self._api() as api:
            contact_errors = self._upsert(api, fields["contact_object"], fields["customer_id"], plan.contacts, {})
            event_errors = self._upsert(api, fields["event_object"], fields["event_id"], plan.events, {
                key: contact_errors[_contact_of(plan, key)] for key in plan.events
                if _contact_of(plan, key) in contact_errors  # its Contact failed: the lookup would fail too
            })
        return [_result(event.event_id, *plan.needs[event.event_id], contact_errors, event_errors)
                for event in events]

    def _upsert(self, api: SalesforceApi, sobject: str, external_id: str, records: dict[str, dict],
                skipped: dict[str, PushResult]) -> dict[str, PushResult]:
        """Send the records not skipped; the failed ones (and the skipped) come back by key."""
        keys = [key for key in records if key not in skipped]
        failed = dict(skipped)
        if not keys:
            return failed
        for key, outcome in zip(keys, api.upsert(sobject, external_id, [records[k] for k in keys]), strict=True):
            if not outcome.get("success"):
                failed[key] = _record_error(sobject, key, outcome)
        return failed

    def _api(self) -> SalesforceApi:
        config = self.config
        credentials = Credentials(
            flow=_text(config, "auth_flow"), login_url=(_text(config, "login_url") or DEFAULT_LOGIN_URL).rstrip("/"),
            consumer_key=_text(config, "consumer_key"), username=_text(config, "username"),
            private_key=str(self.secrets.get("private_key") or ""),
            client_secret=str(self.secrets.get("client_secret") or ""),
        )
        return SalesforceApi(credentials, api_version=_text(config, "api_version") or DEFAULT_API_VERSION,
                             instance_url=_text(config, "instance_url"), timeout=self.timeout, transport=self.transport)


def _contact_of(plan: mapping.Plan, record_key: str) -> str | None:
    return plan.needs[int(record_key)][0]


def _record_error(sobject: str, key: str, outcome: dict) -> PushResult:
    errors = [e for e in outcome.get("errors") or [] if isinstance(e, dict)]
    codes = {str(e.get("statusCode") or e.get("errorCode") or "") for e in errors}
    detail = "; ".join(
        f"{e.get('statusCode') or e.get('errorCode') or 'ERROR'}: {e.get('message') or ''}"
        + (f" (fields: {', '.join(e['fields'])})" if e.get("fields") else "")
        for e in errors
    ) or "no error given"
    retryable = bool(codes) and codes <= RETRYABLE_RECORD_ERRORS
    return PushResult(event_id=0, ok=False, error=f"{sobject} {key}: {detail}", retryable=retryable)


def _result(event_id: int, contact_key: str | None, record_key: str | None, contact_errors: dict,
            event_errors: dict) -> PushResult:
    failure = contact_errors.get(contact_key) or event_errors.get(record_key)
    if failure is None:
        return PushResult.delivered(event_id)
    return PushResult(event_id=event_id, ok=False, error=failure.error, retryable=failure.retryable)


def _text(values: dict, name: str) -> str:
    return str(values.get(name) or "").strip()


def _jwt_problems(config: dict, secrets: dict) -> dict:
    problems = {}
    if not _text(config, "username"):
        problems["username"] = "Required for the JWT bearer flow."
    pem = str(secrets.get("private_key") or "").strip()
    if not pem:
        problems["private_key"] = "Required for the JWT bearer flow."
        return problems
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        problems["private_key"] = "Paste an unencrypted RSA private key in PEM (-----BEGIN PRIVATE KEY-----)."
    return problems


def _client_credentials_problems(config: dict, secrets: dict) -> dict:
    problems = {}
    if not str(secrets.get("client_secret") or "").strip():
        problems["client_secret"] = "Required for the client credentials flow."  # noqa: S105
    host = urlsplit(_text(config, "login_url") or DEFAULT_LOGIN_URL).hostname or ""
    if host in GENERIC_LOGIN_HOSTS:
        problems["login_url"] = "The client credentials flow needs your My Domain URL " \
                                "(https://yourcompany.my.salesforce.com)."
    return problems


def _url_problem(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "/services/" in f"{parts.path}/":
        return "Enter the site's address without an API path, such as https://login.salesforce.com."
    if not is_secure_or_loopback(value):
        return "Use https: credentials and customer data travel over it."
    return ""
