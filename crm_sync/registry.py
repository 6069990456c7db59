"""The CRM connectors this installation knows: `TESSERA_CRM_CONNECTORS` plus the entry-point group
`tessera.crm_connectors`. Read once per process; `reset()` is for tests."""
from functools import cache

from django.conf import settings

from core.plugins import load_plugins
from crm_sync.base import CrmConnector

ENTRY_POINT_GROUP = "tessera.crm_connectors"


@cache
def connectors() -> dict[str, type[CrmConnector]]:
    return load_plugins(
        dotted_paths=list(getattr(settings, "TESSERA_CRM_CONNECTORS", [])), group=ENTRY_POINT_GROUP,
        base=CrmConnector,
    )


def get_connector(key: str) -> type[CrmConnector] | None:
    return connectors().get(key)


def choices() -> list[tuple[str, str]]:
    return sorted(((key, cls.name or key) for key, cls in connectors().items()), key=lambda c: c[1])


def reset() -> None:
    connectors.cache_clear()
