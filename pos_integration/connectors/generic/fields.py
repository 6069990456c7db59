"""Strict readers for the fields of a JSON object, with errors that name the field's path.

We define the generic format ourselves, so a sender that strays from it hears exactly where:
"data.amount must be a whole number of minor units (got 12.5)" beats points silently wrong.
Unknown fields are refused as well, because a typo ("card_no") would otherwise drop the
customer from the sale and lose their points without a word.
"""
import datetime as dt
import re

from pos_integration.base import PermanentConnectorError
from wallet.services.validation import MAX_AMOUNT_MINOR

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)


class PayloadInvalid(PermanentConnectorError):
    """The verified body does not follow the documented format. The delivery fails with this text."""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Fields:
    """One JSON object being read: `path` names it in errors ("data", "data.customer")."""

    def __init__(self, value, path: str, allowed: tuple[str, ...]):
        if not isinstance(value, dict):
            raise PayloadInvalid(f"{path} must be a JSON object.")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise PayloadInvalid(
                f"{path} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}."
            )
        self.value, self.path = value, path

    def _name(self, name: str) -> str:
        return f"{self.path}.{name}"

    def has(self, name: str) -> bool:
        """Present and not null: senders that serialize "no value" as null mean absent."""
        return self.value.get(name) is not None

    def _required(self, name: str):
        if not self.has(name):
            raise PayloadInvalid(f"{self._name(name)} is required.")
        return self.value[name]

    def text(self, name: str, *, max_length: int, required: bool = True) -> str:
        """Trimmed text. An optional text may also be "" (many tills send empty fields)."""
        if not required and self.value.get(name) in (None, ""):
            return ""
        value = self._required(name)
        if not isinstance(value, str):
            raise PayloadInvalid(f"{self._name(name)} must be a string (got {_shown(value)}).")
        value = value.strip()
        if not value or len(value) > max_length:
            raise PayloadInvalid(f"{self._name(name)} must be 1 to {max_length} characters.")
        if "\x00" in value:  # no database text column can hold it: refused here, not failed later
            raise PayloadInvalid(f"{self._name(name)} holds a NUL character (\\u0000).")
        return value

    def amount(self, name: str, *, required: bool = True, minimum: int = 1) -> int | None:
        """Integer minor units (1250 is 12.50 EUR). Decimals and strings are refused: a "12.50"
        meant as euros and read as cents would be a hundredfold error."""
        if not required and not self.has(name):
            return None
        value = self._required(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PayloadInvalid(
                f"{self._name(name)} must be a whole number of minor units, e.g. 1250 for 12.50 (got {_shown(value)})."
            )
        if not minimum <= value <= MAX_AMOUNT_MINOR:
            raise PayloadInvalid(
                f"{self._name(name)} must be between {minimum} and {MAX_AMOUNT_MINOR} (got {value})."
            )
        return value

    def currency(self, name: str) -> str:
        value = self._required(name)
        if not isinstance(value, str) or not _CURRENCY.match(value):
            raise PayloadInvalid(
                f"{self._name(name)} must be an upper-case ISO 4217 code such as EUR (got {_shown(value)})."
            )
        return value

    def time(self, name: str, *, required: bool = True) -> dt.datetime | None:
        """An RFC 3339 date-time with its UTC offset, returned in UTC. A time without an offset is
        refused: the sender's local time and ours may differ by hours."""
        if not required and not self.has(name):
            return None
        value = self._required(name)
        match = _RFC3339.match(value) if isinstance(value, str) else None
        if match is None:
            raise PayloadInvalid(
                f"{self._name(name)} must be an RFC 3339 date-time such as 2025-03-14T09:30:00+01:00 "
                f"(got {_shown(value)})."
            )
        if not match["offset"]:
            raise PayloadInvalid(
                f"{self._name(name)} has no UTC offset: add 'Z' or one like '+01:00' (got {_shown(value)})."
            )
        normalized = value[:10] + "T" + value[11:].replace("z", "Z")
        try:
            parsed = dt.datetime.fromisoformat(normalized)
        except ValueError:
            raise PayloadInvalid(f"{self._name(name)} is not a real date and time (got {_shown(value)}).") from None
        return parsed.astimezone(dt.UTC)

    def number(self, name: str) -> int | float | None:
        if not self.has(name):
            return None
        value = self.value[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise PayloadInvalid(f"{self._name(name)} must be a positive number (got {_shown(value)}).")
        return value

    def object(self, name: str, allowed: tuple[str, ...]) -> "Fields | None":
        if not self.has(name):
            return None
        return Fields(self.value[name], self._name(name), allowed)

    def array(self, name: str, *, max_length: int) -> list:
        if not self.has(name):
            return []
        value = self.value[name]
        if not isinstance(value, list) or len(value) > max_length:
            raise PayloadInvalid(f"{self._name(name)} must be a list of at most {max_length} entries.")
        return value
