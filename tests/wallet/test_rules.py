"""The pure arithmetic a merchant reads in the program settings."""
import datetime as dt
from decimal import Decimal

import pytest

from wallet import rules


@pytest.mark.parametrize(
    ("amount", "currency", "rate", "multiplier", "rounding", "expected"),
    [
        (1299, "EUR", "1", "1", "floor", 12),  # €12.99 at 1 pt/€ rounds down
        (1299, "EUR", "1", "1", "nearest", 13),
        (1201, "EUR", "1", "1", "ceiling", 13),
        (1250, "EUR", "1", "1", "nearest", 13),  # half up, not banker's rounding
        (1000, "JPY", "0.01", "1", "floor", 10),  # yen have no minor unit: 1000 JPY is 1000 yen
        (1000, "KWD", "1", "1", "floor", 1),  # three decimals: 1000 fils is one dinar
        (450, "EUR", "10", "1.5", "floor", 67),  # 4.5 x 10 x 1.5 = 67.5
    ],
)
def test_points_for_amount_follows_rate_multiplier_and_rounding(amount, currency, rate, multiplier, rounding, expected):
    assert rules.points_for_amount(amount, currency, Decimal(rate), Decimal(multiplier), rounding) == expected


def test_partial_refunds_reverse_pro_rata_and_add_up_to_exactly_what_was_earned():
    earned, amount = 101, 1000
    reversed_so_far, refunded = 0, 0
    for part in (333, 333, 334):
        refunded += part
        step = rules.reversal_due(earned, amount, refunded, reversed_so_far)
        reversed_so_far += step
    assert reversed_so_far == earned
    assert rules.reversal_due(earned, amount, 500, 0) == 51  # half of 101, rounded half up


def test_reversal_never_exceeds_what_was_earned():
    assert rules.reversal_due(10, 100, 100, 10) == 0
    assert rules.reversal_due(0, 100, 100, 0) == 0


def test_points_expire_at_end_of_merchants_local_day():
    earned_at = dt.datetime(2026, 3, 1, 22, 30, tzinfo=dt.UTC)  # 17:30 in New York
    expires = rules.expiry_time(earned_at, 30, "America/New_York")
    # 30 days after 1 March local is 31 March; its end is midnight EDT (UTC-4, after the DST change).
    assert expires == dt.datetime(2026, 4, 1, 4, 0, tzinfo=dt.UTC)
    assert rules.expiry_time(earned_at, None, "America/New_York") is None


def test_expirable_points_charges_spending_to_due_points_first():
    # 100 due, 30 spent: 70 expire.
    assert rules.expirable_points(lots_due=100, lot_reversals_due=0, debits=-30, debit_reversals=0, balance=120) == 70
    # The refund of a due lot already took those points.
    assert rules.expirable_points(lots_due=100, lot_reversals_due=-100, debits=0, debit_reversals=0, balance=50) == 0
    # A cancelled redemption gave back what it spent.
    assert rules.expirable_points(lots_due=100, lot_reversals_due=0, debits=-50, debit_reversals=50, balance=100) == 100
    # Never more than the balance, never below zero.
    assert rules.expirable_points(lots_due=100, lot_reversals_due=0, debits=0, debit_reversals=0, balance=40) == 40
    assert rules.expirable_points(lots_due=10, lot_reversals_due=0, debits=-50, debit_reversals=0, balance=40) == 0


def test_card_numbers_carry_a_luhn_check_digit_that_catches_a_mistyped_digit():
    number = rules.new_card_number()
    assert len(number) == 16 and number.startswith("8")
    assert rules.is_valid_card_number(number)
    wrong = number[:5] + str((int(number[5]) + 1) % 10) + number[6:]
    assert not rules.is_valid_card_number(wrong)


def test_coupon_codes_avoid_ambiguous_characters():
    code = rules.new_coupon_code()
    assert len(code) == 10 and not set(code) & set("01ILO")
