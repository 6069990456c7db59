"""JoinedSelect returns exactly what the ORM's select_related returns, with one statement."""
import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from core.joined_select import JoinedSelect
from tests.factories import build_world
from wallet.models import Card

pytestmark = pytest.mark.django_db

SUMMARY = ("tier", "program", "wallet__customer__user")
CARD_BY_NUMBER = JoinedSelect(Card, SUMMARY, where="t0.number = %s AND t0.merchant_id = %s",
                              extra={"answer": "SELECT 42"})


def every_value(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_row_and_its_relations_equal_the_orms_in_one_statement():
    world = build_world()
    card = world.card
    card.tier = world.gold
    card.save()
    expected = Card.objects.select_related(*SUMMARY).get(pk=card.pk)

    with CaptureQueriesContext(connection) as captured:
        found = CARD_BY_NUMBER.first(card.number, card.merchant_id)
        related = [found.tier, found.program, found.wallet, found.wallet.customer, found.wallet.customer.user]

    assert len(captured.captured_queries) == 1  # the relations came with the row
    assert every_value(found) == every_value(expected)
    for mine, theirs in zip(related, [expected.tier, expected.program, expected.wallet, expected.wallet.customer,
                                      expected.wallet.customer.user], strict=True):
        assert type(mine) is type(theirs)
        assert every_value(mine) == every_value(theirs)  # decimals, datetimes, booleans, JSON converted alike
    assert found.tier.multiplier == world.gold.multiplier
    assert found.answer == 42
    assert model_to_dict(found) == model_to_dict(expected)


def test_a_missing_nullable_relation_is_none_and_no_match_is_none():
    world = build_world()
    Card.objects.filter(pk=world.card.pk).update(tier=None)
    found = CARD_BY_NUMBER.first(world.card.number, world.merchant.pk)
    with CaptureQueriesContext(connection) as captured:
        assert found.tier is None  # cached as None: no query for it
    assert captured.captured_queries == []
    assert CARD_BY_NUMBER.first(world.card.number, world.merchant.pk + 1) is None


def test_a_locking_select_locks_the_row_where_the_database_can():
    world = build_world()
    locking = JoinedSelect(Card, ("tier",), where="t0.id = %s", lock_own_row=True)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        assert locking.first(world.card.pk).pk == world.card.pk
    if connection.features.has_select_for_update_of:
        assert captured.captured_queries[0]["sql"].endswith("FOR UPDATE OF t0")


def test_only_forward_foreign_keys_can_be_followed():
    with pytest.raises(ValueError, match="not a forward foreign key"):
        JoinedSelect(Card, ("entries",), where="t0.id = %s").first(1)
