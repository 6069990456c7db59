"""`manage.py check_ledger` proves balance == sum of entries, and names every card that differs."""
import pytest
from django.core.management import CommandError, call_command

from tests.factories import build_world
from tests.wallet.helpers import buy
from wallet.models import Card

pytestmark = pytest.mark.django_db


def test_check_ledger_passes_on_consistent_books(capsys):
    world = build_world()
    buy(world.card, 5000)
    call_command("check_ledger")
    assert "Ledger OK" in capsys.readouterr().out


def test_check_ledger_fails_naming_each_card_whose_balance_differs(capsys):
    good, bad_one, bad_two = build_world(), build_world(), build_world()
    for world in (good, bad_one, bad_two):
        buy(world.card, 5000)
    # Simulate corruption from outside the services (a bad migration, a hand-edited row).
    Card.objects.filter(pk=bad_one.card.pk).update(balance=999)
    Card.objects.filter(pk=bad_two.card.pk).update(balance=0)
    with pytest.raises(CommandError, match="2 card"):
        call_command("check_ledger")
    errors = capsys.readouterr().err
    assert bad_one.card.number in errors and "balance 999 != sum of entries 50" in errors
    assert bad_two.card.number in errors and good.card.number not in errors
