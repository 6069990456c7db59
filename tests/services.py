"""The services policy in one place: a test whose service (PostgreSQL, a broker, Redis, chromium) is
missing skips with the reason; with REQUIRE_SERVICES=1 (CI) it fails instead, so a missing service can
never pass as green."""
import os
import uuid

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"  # the test Redis database other suites use too: never flushed here


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


def use_redis_cache(settings):
    """Django's cache in Redis for one test (a generator for fixtures), as in production: each count is a
    round trip, so a read-then-write limit lets concurrent requests interleave (in the in-process cache
    the GIL hides that race). Each test gets its own key prefix and deletes only its own keys."""
    import redis

    prefix = f"cache-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        missing_service(f"Redis at {REDIS_TEST_URL} unreachable: {error}")
    original = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": REDIS_TEST_URL, "KEY_PREFIX": prefix}}
    yield
    settings.CACHES = original  # before any conftest's cache.clear(), which would flush the database
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)
    client.close()
