"""Schema-driven fuzzing of the whole API (schemathesis against our own /api/schema/).

Every operation gets generated requests, valid and invalid, sent through the real WSGI app as a
logged-in customer who holds a card; no answer may be a 5xx, and every answer must match the
schema: its status code, content type and body.
Bounded by EXAMPLES per operation and mode so it runs in CI in well under a minute.

(schemathesis's own pytest plugin does not run under pytest 9 yet, so operations are driven
through Hypothesis directly; failures are collected per operation and reported together.)
"""
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from config.wsgi import application
from tests.api.conftest import client_for
from tests.factories import build_world
from tests.wallet.helpers import buy

EXAMPLES = 15
FUZZ_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Not negative_data_rejection: it counts an unknown query parameter as invalid data (we ignore those,
# as HTTP APIs usually do) and cannot tell our injected bearer header from a generated one. Explicit
# tests cover the 400s for invalid bodies and parameters.


@pytest.fixture
def keep_test_connection():
    """Calling the WSGI app directly fires request_started/finished, whose handler would close the
    test's database connection mid-transaction; Django's test client disconnects it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, keep_test_connection):
    world = build_world()
    buy(world.card, 25000)
    return {"Authorization": client_for(world.customer.user)._credentials["HTTP_AUTHORIZATION"]}


def fuzz(operation, mode, headers) -> str | None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=FUZZ_CHECKS)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to make invalid (no parameters or body): the positive run covers it
    except Exception as failure:  # noqa: BLE001 - every failure is reported, per operation
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}"
    return None


@pytest.mark.django_db
def test_api_answers_every_generated_request_within_its_schema(bearer):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz(operation, mode, bearer))
    ]
    assert not failures, "\n\n".join(failures)
