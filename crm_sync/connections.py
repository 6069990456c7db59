"""Setting up a merchant's CRM connections (validated settings, sealed secrets), pausing them, and
building the connector object for one."""
from django.conf import settings
from django.db import transaction

from core import secret_box
from core.errors import ValidationFailed
from core.plugins import merged_secrets, split_settings, validated_settings
from crm_sync import registry
from crm_sync.base import CrmConnector
from crm_sync.models import CrmConnection
from crm_sync.outbox import forget_connected_merchants
from merchants.models import Merchant


def connector_class(key: str) -> type[CrmConnector]:
    cls = registry.get_connector(key)
    if cls is None:
        raise ValidationFailed(f"No CRM connector {key!r} is installed.", fields={"connector": ["Unknown."]})
    return cls


def inbound_url(connection: CrmConnection) -> str:
    return connection.config.get("inbound_url") or f"{settings.TESSERA_PUBLIC_URL}/hooks/crm/{connection.pk}/"


def connector_for(connection: CrmConnection, *, transport=None) -> CrmConnector:
    cls = connector_class(connection.connector)
    return cls(config=dict(connection.config), secrets=secret_box.unseal(connection.secrets_encrypted),
               field_mapping=dict(connection.field_mapping), inbound_url=inbound_url(connection), transport=transport)


def _check_event_types(event_types) -> list:
    if not isinstance(event_types, list) or not all(isinstance(t, str) and t for t in event_types):
        raise ValidationFailed("event_types is a list of outbox event types.", fields={"event_types": ["Invalid."]})
    return event_types


def create_connection(merchant: Merchant, connector: str, name: str, values: dict, *, event_types=(),
                      field_mapping: dict | None = None, max_attempts: int = 16) -> CrmConnection:
    cls = connector_class(connector)
    config, secrets = split_settings(cls.config_fields, values)
    validated_settings(cls, config, secrets)
    connection = CrmConnection.objects.create(
        merchant=merchant, connector=connector, name=name or cls.name, config=config,
        secrets_encrypted=secret_box.seal(secrets), field_mapping=field_mapping or {},
        event_types=_check_event_types(list(event_types)), max_attempts=max_attempts,
    )
    transaction.on_commit(forget_connected_merchants)  # ship this merchant's events on commit from now on
    return connection


def update_connection(connection: CrmConnection, values: dict, **changes) -> CrmConnection:
    """Change settings, and any of name, event types, field mapping, attempts and pausing, in one save
    (one audit history row). A secret left blank keeps its saved value."""
    unknown = set(changes) - {"name", "event_types", "field_mapping", "max_attempts", "is_paused"}
    if unknown:
        raise ValueError(f"Not editable here: {sorted(unknown)}")
    if "event_types" in changes:
        changes["event_types"] = _check_event_types(list(changes["event_types"] or []))
    cls = connector_class(connection.connector)
    config, new_secrets = split_settings(cls.config_fields, values)
    with transaction.atomic():
        current = CrmConnection.objects.select_for_update().get(pk=connection.pk)
        secrets = merged_secrets(secret_box.unseal(current.secrets_encrypted), new_secrets)
        validated_settings(cls, config, secrets)
        current.config, current.secrets_encrypted = config, secret_box.seal(secrets)
        for name, value in changes.items():
            setattr(current, name, value)
        current.save(update_fields=["config", "secrets_encrypted", *changes])
    transaction.on_commit(forget_connected_merchants)
    return current


def set_paused(connection: CrmConnection, paused: bool) -> None:
    """Pause: events keep queueing and wait; resume: they go out in order, nothing skipped. Saved (not a
    bulk update) so the audit history shows who paused it."""
    with transaction.atomic():
        current = CrmConnection.objects.select_for_update().get(pk=connection.pk)
        current.is_paused = paused
        current.save(update_fields=["is_paused"])
    transaction.on_commit(forget_connected_merchants)
