"""Checks shared by the services: bad input is refused before anything is written."""
from wallet.errors import InvalidRequest

# Ten million in major units of a two-decimal currency: above any real till, below integer overflow.
MAX_AMOUNT_MINOR = 1_000_000_000
MAX_POINTS_DELTA = 10_000_000


def require_positive_amount(amount, field: str = "amount", maximum: int = MAX_AMOUNT_MINOR) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(f"{field} must be a whole number of minor units.", fields={field: ["Not an integer."]})
    if amount <= 0 or amount > maximum:
        raise InvalidRequest(
            f"{field} must be between 1 and {maximum}.", fields={field: [f"Out of range 1..{maximum}."]}
        )
    return amount


def require_text(value, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidRequest(
            f"{field} is required (1 to {max_length} characters).", fields={field: ["Missing or too long."]}
        )
    return value


def require_no_nul(value, field: str) -> None:
    """Free-form JSON (a sale's line items) may not hold a NUL character anywhere: PostgreSQL's jsonb and
    text columns cannot store one, and finding out there would be a 500 instead of this 400."""
    if _holds_nul(value):
        raise InvalidRequest(f"{field} holds a NUL character (\\u0000).", fields={field: ["NUL character."]})


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(inner) for key, inner in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(inner) for inner in value)
    return False
