"""Store opening hours: local wall-clock periods per weekday, judged in the store's own time zone."""
import datetime as dt
import re
import zoneinfo

from django.core.exceptions import ValidationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def validate_opening_hours(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Opening hours must be an object keyed by weekday (mon..sun).")
    for day, periods in value.items():
        if day not in WEEKDAYS:
            raise ValidationError(f"{day!r} is not a weekday; use one of {', '.join(WEEKDAYS)}.")
        if not isinstance(periods, list):
            raise ValidationError(f"{day}: a list of [open, close] pairs is expected.")
        for period in periods:
            if (
                not isinstance(period, list | tuple)
                or len(period) != 2
                or not all(isinstance(t, str) and _TIME.match(t) for t in period)
                or period[0] == period[1]
            ):
                raise ValidationError(f"{day}: {period!r} is not an [\"HH:MM\", \"HH:MM\"] period.")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def is_open_at(opening_hours: dict, time_zone: str, moment: dt.datetime) -> bool:
    """Whether a store with these hours is open at `moment` (aware), in its own local time.

    A period that closes before it opens runs past midnight and counts for the next morning too.
    """
    local = moment.astimezone(zoneinfo.ZoneInfo(time_zone))
    now = local.hour * 60 + local.minute
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for start, end in opening_hours.get(today, []):
        opens, closes = _minutes(start), _minutes(end)
        if opens < closes and opens <= now < closes:
            return True
        if opens > closes and now >= opens:
            return True
    for start, end in opening_hours.get(yesterday, []):
        opens, closes = _minutes(start), _minutes(end)
        if opens > closes and now < closes:
            return True
    return False
