"""Cashier PINs: set one, and check one at the counter with an attempt limit.

A 4 to 8 digit PIN has at most 10^8 values, so the hash (core.hashing.PINS) only slows an offline
attack; what protects the PIN online is the limit: MAX_PIN_ATTEMPTS wrong PINs in a row lock the
cashier for PIN_LOCK_MINUTES. The check locks the cashier's row, so 20 concurrent guesses are
judged one after another and the limit holds. A locked cashier is refused before the PIN is even
compared, so a correct PIN during the lock is refused too.
"""
import datetime as dt
import re

from django.db import transaction
from django.utils import timezone

from core.errors import TesseraError, ValidationFailed
from core.hashing import PINS
from merchants.models import StaffMember
from pos_integration.models import PosDevice

MAX_PIN_ATTEMPTS = 5
PIN_LOCK_MINUTES = 15
_PIN_SHAPE = re.compile(r"^\d{4,8}$")


class CashierRequired(TesseraError):
    code = "cashier_pin_required"
    http_status = 403
    default_message = "This needs a cashier: send Tessera-Cashier (their id) and Tessera-Cashier-Pin."


class CashierPinInvalid(TesseraError):
    code = "cashier_pin_invalid"
    http_status = 403
    default_message = "Unknown cashier or wrong PIN."


class CashierLocked(TesseraError):
    code = "cashier_locked"
    http_status = 423
    default_message = "Too many wrong PINs: this cashier is locked for a while."


def set_pin(staff: StaffMember, pin: str) -> None:
    """Give a staff member a counter PIN (and clear any lock). Refuses PINs anyone would guess first."""
    if not isinstance(pin, str) or not _PIN_SHAPE.match(pin):
        raise ValidationFailed("A PIN is 4 to 8 digits.", fields={"pin": ["4 to 8 digits."]})
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise ValidationFailed(
            "Choose a PIN that is not a repeated or running sequence.", fields={"pin": ["Too easy."]}
        )
    StaffMember.objects.filter(pk=staff.pk).update(
        pin_hash=PINS.hash(pin), failed_pin_attempts=0, pin_locked_until=None
    )


def counter_cashiers(device: PosDevice):
    """The cashiers who can sign in on this device: active staff of its merchant with a PIN."""
    return (
        StaffMember.objects.filter(merchant_id=device.merchant_id, is_active=True)
        .exclude(pin_hash="")
        .select_related("user")
    )


def verify_cashier(device: PosDevice, cashier_id, pin, *, now: dt.datetime | None = None) -> StaffMember:
    """The cashier of the device's merchant whose PIN this is, or an error. Must run outside any
    transaction of the caller: a wrong PIN's count is committed even though the request fails."""
    if not cashier_id or not pin:
        raise CashierRequired()
    try:
        cashier_pk = int(cashier_id)
    except (TypeError, ValueError):
        raise CashierPinInvalid() from None
    now = now or timezone.now()
    with transaction.atomic():
        staff = (
            counter_cashiers(device).select_for_update(of=("self",)).filter(pk=cashier_pk).first()
        )
        if staff is None:
            raise CashierPinInvalid()  # same answer as a wrong PIN: ids are not worth probing
        if staff.pin_locked_until and staff.pin_locked_until > now:
            raise CashierLocked(fields={"locked_until": [staff.pin_locked_until.isoformat()]})
        matches, new_hash = PINS.verify_and_update(str(pin), staff.pin_hash)
        if matches:
            if staff.failed_pin_attempts or staff.pin_locked_until or new_hash:
                staff.failed_pin_attempts, staff.pin_locked_until = 0, None
                staff.pin_hash = new_hash or staff.pin_hash
                staff.save(update_fields=["failed_pin_attempts", "pin_locked_until", "pin_hash"])
            return staff
        staff.failed_pin_attempts += 1
        locked = staff.failed_pin_attempts >= MAX_PIN_ATTEMPTS
        if locked:
            staff.failed_pin_attempts = 0
            staff.pin_locked_until = now + dt.timedelta(minutes=PIN_LOCK_MINUTES)
        staff.save(update_fields=["failed_pin_attempts", "pin_locked_until"])
    if locked:
        raise CashierLocked(fields={"locked_until": [staff.pin_locked_until.isoformat()]})
    remaining = MAX_PIN_ATTEMPTS - staff.failed_pin_attempts
    raise CashierPinInvalid(fields={"attempts_left": [str(remaining)]})
