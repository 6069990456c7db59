"""Claiming a sale the POS reported without a card: the receipt code and the exact total, once,
only for the customer's own card, and not fast enough to guess someone else's receipt."""
import pytest

from tests.api.conftest import client_for
from tests.factories import build_world
from wallet.models import Card
from wallet.services import PurchaseRequest, record_unmatched_purchase

pytestmark = pytest.mark.django_db


@pytest.fixture
def kept_sale():
    world = build_world()
    record_unmatched_purchase(world.merchant, PurchaseRequest(external_id="pos-77", amount=1250, currency="EUR"),
                              receipt_code="#1042", idempotency_key="k", source="webhook")
    return world


def claim(client, card, code="1042", amount=1250, key="claim-1"):
    return client.post(f"/api/v1/cards/{card.pk}/claims/", {"receipt_code": code, "amount": amount}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key)


def test_a_receipt_number_typed_without_its_hash_claims_the_sale_and_a_retry_replays(kept_sale):
    app = client_for(kept_sale.customer.user)
    first = claim(app, kept_sale.card)
    assert first.status_code == 201 and first.json()["points_earned"] == 12
    again = claim(app, kept_sale.card)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Card.objects.get(pk=kept_sale.card.pk).balance == 12


def test_another_customers_card_cannot_be_used_to_claim(kept_sale):
    other = build_world()
    response = claim(client_for(other.customer.user), kept_sale.card)
    assert response.status_code == 404
    assert Card.objects.get(pk=kept_sale.card.pk).balance == 0


def test_guessing_receipts_is_throttled(kept_sale):
    app = client_for(kept_sale.customer.user)
    answers = [claim(app, kept_sale.card, code=f"{n:04d}", key=f"guess-{n}").status_code for n in range(11)]
    assert answers[:10] == [404] * 10 and answers[10] == 429
