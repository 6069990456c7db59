"""Currencies and time zones: the small facts every amount and schedule depends on.

Money is integer minor units plus an ISO 4217 code. Most currencies have two decimals; the table
lists the ISO 4217 exceptions, so that 1000 JPY is 1000 yen and 1000 KWD is one dinar.
"""
import re
import zoneinfo
from decimal import Decimal

from django.core.exceptions import ValidationError

_ZERO_DECIMAL = {
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
}
_THREE_DECIMAL = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def minor_unit_exponent(currency: str) -> int:
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _THREE_DECIMAL:
        return 3
    return 2


def to_major_units(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-minor_unit_exponent(currency))


def validate_currency_code(value: str) -> None:
    if not _CURRENCY_CODE.match(value or ""):
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code (three capital letters).")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris).")
