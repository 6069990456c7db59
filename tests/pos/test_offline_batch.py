"""A till that was offline uploads its queued purchases: each genuine one earns once, however often
the batch is sent, and one whose pass token was tampered with is reported, not earned."""
import datetime as dt

import pytest

from pos_integration.models import CounterAction
from tests.factories import build_world, make_card, make_customer
from tests.pos.helpers import till
from tests.wallet.helpers import ledger_sum
from wallet.models import Card, LedgerEntry
from wallet.passes.tokens import issue_token

pytestmark = pytest.mark.django_db


def tampered(token: str) -> str:
    """Change one character in the middle of the signed part, keeping the token's shape."""
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]


def queue(count: int):
    """A world with ten cards and `count` sales queued offline over the last day and a bit."""
    world = build_world()
    cards = [world.card] + [make_card(world.program, make_customer()) for _ in range(9)]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=30)
    purchases = []
    for n in range(count):
        card = cards[n % len(cards)]
        at = start + dt.timedelta(minutes=3 * n)
        purchases.append({
            "idempotency_key": f"offline-{n}", "code": issue_token(card, now=at), "external_id": f"OFF-{n}",
            "amount": 100 + n, "currency": "EUR", "occurred_at": at.isoformat(),
        })
    return world, cards, purchases


def test_a_batch_of_500_uploaded_twice_earns_each_genuine_purchase_once_and_reports_the_tampered_one():
    world, cards, purchases = queue(500)
    purchases[137]["code"] = tampered(purchases[137]["code"])
    client = till(world)
    first = client.post("/api/pos/v1/offline-batches/", {"purchases": purchases}, format="json")
    assert first.status_code == 200, first.content[:500]
    body = first.json()
    assert (body["earned"], body["replayed"], body["rejected"]) == (499, 0, 1)
    bad = body["results"][137]
    assert bad["status"] == "rejected" and bad["external_id"] == "OFF-137"
    assert bad["error"]["code"] == "token_rejected"
    expected = sum((100 + n) // 100 for n in range(500) if n != 137)
    assert sum(Card.objects.filter(pk__in=[c.pk for c in cards]).values_list("balance", flat=True)) == expected

    again = client.post("/api/pos/v1/offline-batches/", {"purchases": purchases}, format="json").json()
    assert (again["earned"], again["replayed"], again["rejected"]) == (0, 499, 1)
    assert [r.get("balance") for r in again["results"]] == [r.get("balance") for r in body["results"]]
    assert LedgerEntry.objects.filter(kind="earn", purchase__external_id__startswith="OFF-").count() == 499
    assert CounterAction.objects.filter(kind="offline_purchase").count() == 499
    for card in cards:
        assert Card.objects.get(pk=card.pk).balance == ledger_sum(card)
    entry = LedgerEntry.objects.get(purchase__external_id="OFF-0")
    assert entry.occurred_at == dt.datetime.fromisoformat(purchases[0]["occurred_at"])  # the sale's own time


def test_a_token_moved_to_another_time_or_a_typed_number_is_refused():
    world, _cards, purchases = queue(3)
    moved = dict(purchases[0], occurred_at=(dt.datetime.fromisoformat(purchases[0]["occurred_at"])
                                            + dt.timedelta(hours=2)).isoformat())
    typed = dict(purchases[1], code=world.card.number)
    too_old = dict(purchases[2], occurred_at=(dt.datetime.now(dt.UTC) - dt.timedelta(days=8)).isoformat())
    body = till(world).post("/api/pos/v1/offline-batches/", {"purchases": [moved, typed, too_old]},
                            format="json").json()
    assert [r["status"] for r in body["results"]] == ["rejected"] * 3
    assert body["results"][0]["error"]["fields"] == {"reason": ["expired"]}
    assert body["results"][1]["error"]["code"] == "token_required"
    assert body["results"][2]["error"]["code"] == "occurred_at_out_of_range"
    assert not LedgerEntry.objects.filter(kind="earn").exists()


def test_a_batch_over_500_or_with_a_malformed_line_is_refused_whole():
    world, _cards, purchases = queue(1)
    purchases = purchases * 501
    client = till(world)
    assert client.post("/api/pos/v1/offline-batches/", {"purchases": purchases},
                       format="json").status_code == 400
    broken = [dict(purchases[0], amount=-1)]
    assert client.post("/api/pos/v1/offline-batches/", {"purchases": broken}, format="json").status_code == 400
    assert not LedgerEntry.objects.filter(kind="earn").exists()
