"""Shared helpers for POS tests: a merchant's connection to a connector, and posting a webhook to it
through the real URL, with the after-commit Celery task run in-process (eager) as a worker would."""
import pytest
from celery import current_app

from pos_integration.connections import create_connection


@pytest.fixture
def eager_celery():
    app = current_app
    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def make_connection():
    """make_connection(world_or_merchant, "square", {"signature_key": "...", ...}) -> PosConnection"""

    def build(world, connector: str, values: dict, *, name: str = ""):
        merchant = getattr(world, "merchant", world)
        store = getattr(world, "store", None)
        return create_connection(merchant, connector, name or f"{connector} test", values, store=store)

    return build


@pytest.fixture
def post_webhook(client, eager_celery, django_capture_on_commit_callbacks):
    """post_webhook(connection, body_bytes, {"Header-Name": "value"}) -> response.

    Posts the exact bytes to /hooks/pos/<id>/ and runs what the view schedules on commit (the
    processing task) before returning, so the test sees the ledger after the worker's turn."""

    def post(connection, body: bytes, headers: dict, *, content_type="application/json"):
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic("POST", f"/hooks/pos/{connection.pk}/", body, content_type=content_type, **extra)

    return post
