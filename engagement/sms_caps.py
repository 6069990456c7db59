"""How many texts one phone number may receive, whoever sends them: SMS_MAX_PER_NUMBER_PER_HOUR and
SMS_MAX_PER_NUMBER_PER_DAY, across every merchant and every customer record holding that number.

Why per number: frequency caps are per merchant and customer, but the number is what costs money and
what an attacker chooses (SMS pumping: they are paid for each text sent to numbers they rent). A number
with cards at twenty merchants, or on several customer records spelled differently, would otherwise
receive texts without bound. Spellings are read as E.164 first, so they share one budget.

Windows are fixed UTC hours and days of the dispatcher's clock (the moment it decides at), so a pinned
clock in tests and a replay count in the windows they name. Each window is one counter in the cache,
counted with core.throttling's atomic add-then-increment: however many workers send at once, each gets
its own number back and only those within the limit send. The hour is counted first and a text it
refuses is not counted in the day, so a burst refused by the hour does not use up the day. (A text the
day refuses has used an hour slot, but that hour lies inside the full day.) Every text handed to the
provider counts, whether or not the provider then accepts it.
Across a window boundary a number can get up to twice a limit in a short time: the price of counters
instead of a history, and the hourly limit bounds it.

The cache unreachable: fail closed. The text is not sent and the send is reported as a temporary
failure, so the dispatcher tries it again later (MAX_ATTEMPTS, RETRY_DELAYS) and then gives up; no text
ever goes out unchecked. Not a database fallback: counting one number's sends across customers and
merchants atomically would need a lock the send log is not keyed for, and the cache is already what
the login throttles depend on.

The cache holds the number only as a keyed hash.
"""
import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.crypto import salted_hmac

from core.throttling import count_in_window
from engagement.channels.base import SendFailed
from wallet.services.accounts import normalize_phone

logger = logging.getLogger(__name__)

DEFAULT_PER_HOUR = 5
DEFAULT_PER_DAY = 10


class NumberCapped(Exception):
    """The number has had its texts for this window: the send is skipped, not tried again."""


def reserve_sms(phone: str, moment: dt.datetime) -> None:
    """Count one text to `phone` at `moment` before it is handed to the provider.

    Raises NumberCapped when the hourly or daily limit is reached, SendFailed (not permanent) when
    the counters cannot be reached.
    """
    ident = salted_hmac("engagement.sms_caps.number", _number(phone)).hexdigest()
    epoch = int(moment.timestamp())
    for window, seconds, limit in _windows():
        key = f"sms-number:{window}:{epoch // seconds}:{ident}"
        try:
            count = count_in_window(key, timeout=2 * seconds)
        except Exception as error:  # noqa: BLE001 - any cache failure means the cap cannot be checked
            logger.warning("SMS number cap not checked, text held back: %s", type(error).__name__)
            raise SendFailed("The per-number SMS limit could not be checked (cache unreachable).") from None
        if count > limit:
            raise NumberCapped(f"This number has had {limit} texts this {window} (all merchants).")


def _windows() -> list[tuple[str, int, int]]:
    return [
        ("hour", 3600, getattr(settings, "SMS_MAX_PER_NUMBER_PER_HOUR", DEFAULT_PER_HOUR)),
        ("day", 86400, getattr(settings, "SMS_MAX_PER_NUMBER_PER_DAY", DEFAULT_PER_DAY)),
    ]


def _number(phone: str) -> str:
    """E.164 when it can be read as such, so spellings of one number share its counters."""
    try:
        return normalize_phone(phone)
    except ValidationError:
        return "".join((phone or "").split())
