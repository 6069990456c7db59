"""A NUL character (\\u0000) in any text of a vendor's webhook, for every POS connector.

PostgreSQL's text and jsonb cannot store a NUL, so a sale id, customer email or line item holding one
used to parse fine and then fail at the database: a 500 at intake when it sat in the vendor's event id,
otherwise a failed delivery logged as a connector bug and retried five times. Now it is bad input:
the vendor gets its 2xx, the delivery fails for good naming the field, nothing else is written.

Each string of each connector's fixtures (Clover: of the payment, order and customer its API answers
with) in turn holds a NUL, posted through the real URL, each in its own rolled-back savepoint so every
sale is new. Only connectors with vendor fixtures: the generic connector's reader refuses NUL itself
(tests/pos/test_webhook_fuzz.py).
"""
import copy
import dataclasses
import logging

import pytest
from django.db import transaction

from pos_integration.base import ConnectorError, WebhookRejected
from pos_integration.connections import connector_for
from pos_integration.models import WebhookDelivery
from pos_integration.processing import MAX_AUTOMATIC_ATTEMPTS
from tests.pos.test_webhook_fuzz import (  # noqa: F401 - connect, fakes and public_url are fixtures
    CLOVER_MID,
    CONNECTORS_DIR,
    VENDORS,
    connect,
    encode,
    fakes,
    fixture_documents,
    incoming,
    paths_in,
    public_url,
    replaced,
)
from wallet.models import LedgerEntry, Purchase

pytestmark = pytest.mark.django_db

NUL = "\u0000"


def string_paths(document) -> list[tuple]:
    found = []
    for path in paths_in(document)[1:]:
        value = document
        for step in path:
            value = value[step]
        if isinstance(value, str):
            found.append(path)
    return found


def with_nul(document, path: tuple):
    value = document
    for step in path:
        value = value[step]
    return replaced(document, path, value + NUL + "x")  # still a valid id, amount prefix, etc. for a lax parser


def holds_nul(value) -> bool:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(inner) for key, inner in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(inner) for inner in value)
    return False


def nul_reaches_us(connector, body: bytes, headers: dict) -> bool:
    """Whether the parser hands us a NUL (in an event or the vendor's event id), as opposed to
    refusing the body itself or dropping the field."""
    request = incoming(connector, body, headers)
    try:
        connector.verify_webhook(request)
        parsed = connector.parse_webhook(request)
    except (WebhookRejected, ConnectorError):
        return False
    return holds_nul(parsed.vendor_event_id) or any(holds_nul(event) for event in parsed.events)


def post_in_savepoint(post_webhook, connection, body: bytes, headers: dict, caplog):
    """Post, and report what it left behind; then roll it all back so the next sale is new again."""
    with transaction.atomic():
        purchases, entries = Purchase.objects.count(), LedgerEntry.objects.count()
        caplog.clear()
        response = post_webhook(connection, body, headers)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
        seen = {
            "status": delivery.status, "error": delivery.error, "attempts": delivery.attempts,
            "money_written": (Purchase.objects.count(), LedgerEntry.objects.count()) != (purchases, entries),
            "errors_logged": [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR],
        }
        transaction.set_rollback(True)
    return seen


def refused_as_bad_input(seen: dict) -> bool:
    return (
        seen["status"] == WebhookDelivery.Status.FAILED and "NUL" in seen["error"]
        and seen["attempts"] >= MAX_AUTOMATIC_ATTEMPTS and not seen["money_written"] and not seen["errors_logged"]
    )


def fixtures_by_name(key: str) -> dict:
    names = [path.name for path in sorted((CONNECTORS_DIR / key / "fixtures").glob("*.json"))]
    return dict(zip(names, fixture_documents(key), strict=True))


def topic_for(name: str) -> str:
    return "refunds/create" if "refund" in name else "orders/paid"  # only Shopify reads it


@pytest.mark.parametrize("key", ["shopify", "square", "stripe"])
def test_a_nul_in_any_text_of_a_vendor_webhook_fails_the_delivery_for_good_and_writes_nothing(
        key, connect, post_webhook, caplog):  # noqa: F811 - the imported fixture
    connection = connect(key)
    connector = connector_for(connection)
    reached, problems = 0, []
    for name, document in fixtures_by_name(key).items():
        for path in string_paths(document):
            body = encode(with_nul(document, path))
            headers = VENDORS[key].sign(connector, body, topic_for(name))
            expected = nul_reaches_us(connector, body, headers)
            seen = post_in_savepoint(post_webhook, connection, body, headers, caplog)
            if expected and not refused_as_bad_input(seen):
                problems.append(f"{name} {path}: {seen}")
            elif seen["errors_logged"]:
                problems.append(f"{name} {path}: logged as a bug: {seen}")
            reached += expected
    assert not problems, "\n".join(problems)
    assert reached >= 5, f"only {reached} fields carried a NUL past the parser: the sweep proves little"


def test_a_nul_in_what_clovers_api_answers_fails_the_delivery_for_good_and_writes_nothing(
        connect, fakes, post_webhook, caplog):  # noqa: F811 - the imported fixtures
    """A Clover notification holds only ids: the texts come from the payment, order and customer fetched."""
    connection = connect("clover")
    connector = connector_for(connection)
    clover = fakes["clover"]
    body = (CONNECTORS_DIR / "clover" / "fixtures" / "notification_payment_created.json").read_bytes()
    headers = VENDORS["clover"].sign(connector, body, "")
    stored = clover.data[CLOVER_MID]
    reached, problems = 0, []
    for collection in ("payments", "orders", "customers"):
        for object_id, original in list(stored[collection].items()):
            # Not the ids and links: one with a NUL is just not found (and retried) by Clover's API.
            for path in [path for path in string_paths(original) if path[-1] not in ("id", "href")]:
                with clover.lock:
                    stored[collection][object_id] = with_nul(original, path)
                expected = nul_reaches_us(connector, body, headers)
                seen = post_in_savepoint(post_webhook, connection, body, headers, caplog)
                with clover.lock:
                    stored[collection][object_id] = copy.deepcopy(original)
                if expected and not refused_as_bad_input(seen) or seen["errors_logged"]:
                    problems.append(f"{collection} {path}: {seen}")
                reached += expected
    assert not problems, "\n".join(problems)
    assert reached >= 3, f"only {reached} fields carried a NUL past the parser: the sweep proves little"


@pytest.mark.parametrize("key", ["square", "stripe", "clover"])
def test_a_nul_in_the_vendors_event_id_is_answered_2xx_and_fails_for_good(
        key, connect, post_webhook, caplog):  # noqa: F811 - the imported fixture
    """The event id is read at intake to spot repeats; one holding a NUL used to be a 500 there.
    (Shopify's is a header, which cannot hold a NUL.)"""
    connection = connect(key)
    connector = connector_for(connection)
    name, path = {
        "square": ("payment_created.json", ("event_id",)),
        "stripe": ("payment_intent.succeeded.json", ("id",)),
        "clover": ("notification_payment_created.json", ("merchants", CLOVER_MID, 0, "type")),
    }[key]
    body = encode(with_nul(fixtures_by_name(key)[name], path))
    headers = VENDORS[key].sign(connector, body, "")

    seen = post_in_savepoint(post_webhook, connection, body, headers, caplog)

    assert refused_as_bad_input(seen), seen
