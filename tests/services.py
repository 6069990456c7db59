"""The services policy in one place: a test whose service (PostgreSQL, a broker, Redis, chromium) is
missing skips with the reason; with REQUIRE_SERVICES=1 (CI) it fails instead, so a missing service can
never pass as green."""
import os

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def missing_service(message: str):
    """Skip the test, or fail it under REQUIRE_SERVICES=1. Never returns."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


def reachable_broker(url: str, what: str = "broker", timeout: float = 3) -> str:
    """`url` when a kombu connection to it opens; otherwise `missing_service`."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:  # noqa: BLE001 - any connection failure means the service is absent
        missing_service(f"{what} {url} unreachable: {error}")
    return url
