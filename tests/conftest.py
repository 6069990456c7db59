"""Suite-wide fixtures and the services policy.

Tests marked `postgres` need PostgreSQL (row locks, triggers). On SQLite they skip with the reason;
with REQUIRE_SERVICES=1 (CI) they fail instead, so a missing service can never pass as green.
"""
import os

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings

from tests.factories import build_world
from tests.services import missing_service, reachable_broker, use_redis_cache

# In CI, property tests and the schema fuzz draw the same examples every run, so a red run always
# means a change broke something; locally they explore new examples each time.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        missing_service("needs PostgreSQL: set DATABASE_URL=postgres://... (SQLite has no row locks or triggers)")


@pytest.fixture
def world(db):
    """A café merchant with a store, a program with tiers and rewards, and an enrolled customer."""
    return build_world()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Argon2 is deliberately slow; tests that are not about hashing use a fast hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rules_cache():
    """Test databases roll back and reuse ids, so a merchant of one test can have the id and rules
    version another test's merchant had: start every test with an empty per-process rules cache."""
    from merchants import rules_cache

    rules_cache.clear()
    yield
    rules_cache.clear()


@pytest.fixture
def broker_url(tmp_path):
    """CELERY_BROKER_URL when it answers (Redis in CI), else a throwaway SQLite broker when none is set."""
    configured = os.environ.get("CELERY_BROKER_URL")
    if not configured:
        return f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    return reachable_broker(configured)


@pytest.fixture
def redis_cache(settings):
    """Django's cache in Redis for this test (tests.services.use_redis_cache): for atomic counters."""
    yield from use_redis_cache(settings)
