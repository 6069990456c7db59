"""Pure loyalty arithmetic: no database, no clock. Each function states the rule a merchant reads.

Points are integers. Fractions appear only inside a computation and are rounded once, at the end,
by the program's rounding rule, so two systems given the same inputs agree to the point.
"""
import datetime as dt
import secrets
import zoneinfo
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from core.money import to_major_units

_ROUNDING = {"floor": ROUND_FLOOR, "nearest": ROUND_HALF_UP, "ceiling": ROUND_CEILING}


def points_for_amount(
    amount_minor: int, currency: str, points_per_unit: Decimal, multiplier: Decimal, rounding: str
) -> int:
    """Points a purchase earns: amount in major units x rate x tier multiplier, rounded once."""
    raw = to_major_units(amount_minor, currency) * Decimal(points_per_unit) * Decimal(multiplier)
    return int(raw.to_integral_value(rounding=_ROUNDING[rounding]))


def reversal_due(points_earned: int, amount: int, refunded_total: int, already_reversed: int) -> int:
    """Points a refund takes back, pro rata, computed on the running total so rounding never drifts.

    After refunds totalling R of an amount A that earned P points, P x R / A (half up) points stand
    reversed; a full refund reverses exactly P. Returns what this refund adds to what is reversed.
    """
    if amount <= 0 or points_earned <= 0:
        return 0
    target = (Decimal(points_earned) * refunded_total / amount).to_integral_value(rounding=ROUND_HALF_UP)
    return max(0, min(points_earned, int(target)) - already_reversed)


def tier_for(lifetime_points: int, tiers):
    """The highest tier whose threshold the lifetime points reach, or None. `tiers` sorted by threshold."""
    reached = None
    for tier in tiers:
        if lifetime_points >= tier.threshold:
            reached = tier
    return reached


def expiry_time(occurred_at: dt.datetime, validity_days: int | None, time_zone: str) -> dt.datetime | None:
    """Points earned at `occurred_at` expire at the end of the merchant's local day, `validity_days` later.

    End of the local day, not a UTC instant, so a customer never loses points in the middle of the
    merchant's business day (the "expires at 7 pm the day before" bug of UTC midnights).
    """
    if validity_days is None:
        return None
    zone = zoneinfo.ZoneInfo(time_zone)
    local_date = occurred_at.astimezone(zone).date() + dt.timedelta(days=validity_days + 1)
    return dt.datetime.combine(local_date, dt.time.min, tzinfo=zone).astimezone(dt.UTC)


def expirable_points(
    lots_due: int, lot_reversals_due: int, debits: int, debit_reversals: int, balance: int
) -> int:
    """Points to expire now, spending the earliest-expiring points first.

    lots_due: credits whose expiry has passed; lot_reversals_due: refunds of those credits (<= 0);
    debits: every other negative entry, earlier expiries included (<= 0); debit_reversals: entries
    that undo a debit, such as a cancelled redemption (>= 0). What was spent is charged to the due
    lots first, so only their unspent remainder expires, never more than the balance.
    """
    spent = -(debits + debit_reversals)
    return max(0, min(balance, lots_due + lot_reversals_due - spent))


# Card numbers and coupon codes ------------------------------------------------------------------

def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_card_number(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


CARD_NUMBER_PREFIX = "8"
CARD_NUMBER_LENGTH = 16


def new_card_number() -> str:
    """16 digits: a prefix, random digits and a Luhn check digit that catches any single mistyped digit."""
    body = CARD_NUMBER_PREFIX + "".join(
        secrets.choice("0123456789") for _ in range(CARD_NUMBER_LENGTH - len(CARD_NUMBER_PREFIX) - 1)
    )
    return body + luhn_check_digit(body)


# No 0/O, 1/I/L: a cashier may have to read a coupon aloud or type it.
COUPON_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_coupon_code(length: int = 10) -> str:
    return "".join(secrets.choice(COUPON_ALPHABET) for _ in range(length))
