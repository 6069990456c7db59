"""The POS connectors this installation knows: `TESSERA_POS_CONNECTORS` plus the entry-point group
`tessera.pos_connectors`. Read once per process; `reset()` is for tests that install a package."""
from functools import cache

from django.conf import settings

from core.plugins import load_plugins
from pos_integration.base import PosConnector

ENTRY_POINT_GROUP = "tessera.pos_connectors"


@cache
def connectors() -> dict[str, type[PosConnector]]:
    return load_plugins(
        dotted_paths=list(getattr(settings, "TESSERA_POS_CONNECTORS", [])),
        group=ENTRY_POINT_GROUP,
        base=PosConnector,
    )


def get_connector(key: str) -> type[PosConnector] | None:
    return connectors().get(key)


def choices() -> list[tuple[str, str]]:
    return sorted(((key, cls.name or key) for key, cls in connectors().items()), key=lambda c: c[1])


def reset() -> None:
    connectors.cache_clear()
