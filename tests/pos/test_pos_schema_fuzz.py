"""Schema-driven fuzzing of the POS API (/api/pos/v1/...) as a real till: a registered device's key and a
cashier's valid PIN on every request, so generated requests get past authentication into the views.

Every operation gets generated requests, valid and invalid (schemathesis, from our own /api/schema/);
in every other valid one the card code, currency, sale id and reward are swapped for real ones, so
purchases, refunds, redemptions and adjustments actually run. No answer may be a 5xx or stray from the
schema; an answer of 400 or more must have written no money row (card, ledger entry, purchase,
redemption, outbox event); and after the run every card's balance equals the sum of its entries
(`check_ledger`). Bounded by EXAMPLES per operation and mode (a few seconds in all).

The driving is tests/api/test_schema_fuzz.py's (schemathesis's pytest plugin does not run under pytest 9).
"""
import itertools

import pytest
import schemathesis
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from config.wsgi import application
from pos_integration.services import register_device
from tests.api.test_schema_fuzz import FUZZ_CHECKS, keep_test_connection  # noqa: F401 - a fixture
from tests.factories import build_world
from tests.fuzzing import failure_of
from tests.pos.helpers import PIN, make_cashier
from tests.wallet.helpers import buy
from wallet.models import Card, DomainEvent, LedgerEntry, Purchase, Redemption
from wallet.passes.tokens import issue_token

EXAMPLES = 6
POS_PREFIX = "/api/pos/v1/"
SALE = "R-FUZZ-1"
# Every field a POS request body has (the schema allows others; the serializers refuse them).
FIELDS = {"code", "external_id", "amount", "currency", "items", "reward_id", "delta", "reason", "purchases"}
# The fields set to real values (optional ones too: a redemption without reward_id reaches no reward).
REAL_FIELDS = {"scan/": ("code",), "purchases/": ("code", "currency", "external_id"),
               "redemptions/": ("code", "reward_id"), "refunds/": ("external_id",), "adjustments/": ("code",)}


def money_rows() -> tuple:
    """What a failed counter request must not leave behind (the idempotency record of a refused
    request is not money, and a wrong PIN is counted on purpose)."""
    return tuple(model.objects.count() for model in (Card, LedgerEntry, Purchase, Redemption, DomainEvent))


@pytest.fixture
def shop(db, keep_test_connection):  # noqa: F811 - the imported fixture
    world = build_world()
    buy(world.card, 25000, SALE)  # 250 points and a sale to refund
    cashier = make_cashier(world.merchant)
    key = register_device(world.store, "Fuzz till").key
    world.headers = {"Authorization": f"Device {key}", "Tessera-Cashier": str(cashier.pk), "Tessera-Cashier-Pin": PIN}
    return world


def real_values(world, path: str) -> dict:
    """Field values that reach past validation into the counter's services. A redemption needs the
    live pass token (a card number is refused by design): the same token under the fuzz's ever new
    idempotency keys redeems once and is then refused, which must roll back all that it wrote."""
    token = issue_token(world.card)
    codes = [token] if path.endswith("/redemptions/") else [world.card.number, token]
    return {
        "code": st.sampled_from(codes),
        "currency": st.just(world.merchant.currency),
        "external_id": st.sampled_from([SALE, "R-FUZZ-NEW"]),
        "reward_id": st.just(world.coffee.pk),
    }


def fuzz(operation, mode, world) -> str | None:
    swaps = real_values(world, operation.path)

    examples = itertools.count()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case, data):
        if mode is GenerationMode.POSITIVE and isinstance(case.body, dict) and next(examples) % 2 == 0:
            # Generated extra properties are refused by our strict serializers: a real till sends none.
            case.body = {name: value for name, value in case.body.items() if name in FIELDS}
            for name in REAL_FIELDS.get(operation.path.removeprefix(POS_PREFIX), ()):
                case.body[name] = data.draw(swaps[name])
        before = money_rows()
        response = case.call(headers=world.headers)
        case.validate_response(response, checks=FUZZ_CHECKS)
        if response.status_code >= 400:
            assert money_rows() == before, f"{response.status_code} but money rows were written: {case.body!r}"

    return failure_of(run, operation, mode)


@pytest.mark.django_db
def test_pos_api_answers_every_generated_request_from_a_real_till_within_its_schema(shop):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [op for result in schema.get_all_operations() if (op := result.ok()).path.startswith(POS_PREFIX)]
    assert len(operations) >= 9
    # Redemptions first, while the card still holds the points that fuzzed adjustments may take away.
    operations.sort(key=lambda operation: not operation.path.endswith("/redemptions/"))
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz(operation, mode, shop))
    ]
    assert not failures, "\n\n".join(failures)
    assert LedgerEntry.objects.filter(card=shop.card).count() > 1, "no generated request reached the ledger"
    call_command("check_ledger")  # raises naming any card whose balance is not the sum of its entries


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_sale_whose_items_hold_a_nul_character_is_refused_not_a_500(shop):
    client = Client(raise_request_exception=False)
    body = {"code": shop.card.number, "external_id": "R-NUL", "amount": 100, "currency": shop.merchant.currency,
            "items": [{"name": "Tea\u0000"}]}
    before = money_rows()

    response = client.post("/api/pos/v1/purchases/", body, content_type="application/json",
                           headers={**shop.headers, "Idempotency-Key": "nul-1"})

    assert response.status_code == 400, response.status_code
    assert money_rows() == before
