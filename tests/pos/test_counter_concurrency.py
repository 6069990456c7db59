"""The counter under real concurrency, on PostgreSQL: the PIN limit holds when 20 guesses arrive
at once, and one pass token redeems once however many tills try it together."""
import pytest

from core.errors import TesseraError
from pos_integration.cashiers import MAX_PIN_ATTEMPTS, verify_cashier
from pos_integration.counter import identify
from pos_integration.counter_actions import redeem
from pos_integration.services import register_device
from tests.factories import build_world
from tests.pos.helpers import PIN, make_cashier
from tests.wallet.helpers import buy, ledger_sum
from tests.wallet.test_concurrency import run_together
from wallet.models import Card, Redemption
from wallet.passes.tokens import issue_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_wrong_pins_lock_after_five_and_the_right_pin_is_then_refused():
    world = build_world()
    cashier = make_cashier(world.merchant)
    device = register_device(world.store, "Till").device

    def guess(index):
        try:
            verify_cashier(device, cashier.pk, f"{1357 + 2 * index}")
            return "signed_in"
        except TesseraError as refusal:
            return refusal.code

    outcomes = run_together(20, guess)
    assert outcomes.count("cashier_pin_invalid") == MAX_PIN_ATTEMPTS - 1
    assert outcomes.count("cashier_locked") == 20 - (MAX_PIN_ATTEMPTS - 1)
    with pytest.raises(TesseraError) as locked:
        verify_cashier(device, cashier.pk, PIN)
    assert locked.value.code == "cashier_locked"


def test_one_token_presented_at_ten_tills_at_once_redeems_once():
    world = build_world()
    buy(world.card, 100000)  # 1000 points: enough for ten coffees, so only the token limits
    cashier = make_cashier(world.merchant)
    devices = [register_device(world.store, f"Till {n}").device for n in range(10)]
    token = issue_token(world.card)

    def attempt(index):
        device = devices[index]
        try:
            redeem(device, cashier, identify(device, token), world.coffee.pk, f"redeem-{index}")
            return "redeemed"
        except TesseraError as refusal:
            return refusal.code

    outcomes = run_together(10, attempt)
    assert outcomes.count("redeemed") == 1 and outcomes.count("token_already_spent") == 9
    card = Card.objects.get(pk=world.card.pk)
    assert card.balance == 900 == ledger_sum(card)
    assert Redemption.objects.filter(card=card).count() == 1
