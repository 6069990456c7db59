"""Setting up a merchant's POS connections and building the connector object for one.

Config is validated by the connector before anything is saved. Secrets are sealed (encrypted) at
rest and never returned: the admin shows a masked hint, and saving a blank secret keeps the old one.
"""
from django.conf import settings
from django.db import transaction

from core import secret_box
from core.errors import ValidationFailed
from core.plugins import merged_secrets, split_settings, validated_settings
from merchants.models import Merchant, Store
from pos_integration import registry
from pos_integration.base import PosConnector
from pos_integration.models import PosConnection


def connector_class(key: str) -> type[PosConnector]:
    cls = registry.get_connector(key)
    if cls is None:
        raise ValidationFailed(f"No POS connector {key!r} is installed.", fields={"connector": ["Unknown."]})
    return cls


def webhook_url(connection: PosConnection) -> str:
    """The URL the vendor calls. Signatures that cover the URL (Square) must use exactly the one the
    merchant registered with the vendor, so a configured `notification_url` wins over ours."""
    return connection.config.get("notification_url") or f"{settings.TESSERA_PUBLIC_URL}/hooks/pos/{connection.pk}/"


def connector_for(connection: PosConnection) -> PosConnector:
    cls = connector_class(connection.connector)
    return cls(config=dict(connection.config), secrets=secret_box.unseal(connection.secrets_encrypted),
               webhook_url=webhook_url(connection))


def create_connection(merchant: Merchant, connector: str, name: str, values: dict,
                      store: Store | None = None) -> PosConnection:
    """`values` holds config and secrets together; the connector's schema says which is which."""
    cls = connector_class(connector)
    if store is not None and store.merchant_id != merchant.pk:
        raise ValidationFailed("Not a store of this merchant.", fields={"store": ["Invalid."]})
    config, secrets = split_settings(cls.config_fields, values)
    validated_settings(cls, config, secrets)
    return PosConnection.objects.create(
        merchant=merchant, store=store, connector=connector, name=name or cls.name, config=config,
        secrets_encrypted=secret_box.seal(secrets),
    )


def update_connection(connection: PosConnection, values: dict, **changes) -> PosConnection:
    """Change settings, and any of name, store and is_active, in one save (one audit history row).
    A secret left blank keeps its saved value (it is never shown to re-enter)."""
    unknown = set(changes) - {"name", "store", "is_active"}
    if unknown:
        raise ValueError(f"Not editable here: {sorted(unknown)}")
    cls = connector_class(connection.connector)
    config, new_secrets = split_settings(cls.config_fields, values)
    with transaction.atomic():
        current = PosConnection.objects.select_for_update().get(pk=connection.pk)
        store = changes.get("store")
        if store is not None and store.merchant_id != current.merchant_id:
            raise ValidationFailed("Not a store of this merchant.", fields={"store": ["Invalid."]})
        secrets = merged_secrets(secret_box.unseal(current.secrets_encrypted), new_secrets)
        validated_settings(cls, config, secrets)
        current.config, current.secrets_encrypted = config, secret_box.seal(secrets)
        for name, value in changes.items():
            setattr(current, name, value)
        current.save(update_fields=["config", "secrets_encrypted", *changes])
    return current


def masked_secrets(connection: PosConnection) -> dict:
    return {name: secret_box.mask(value) for name, value in secret_box.unseal(connection.secrets_encrypted).items()}
