"""Third-party cards: a customer keeps any store's plastic card in the wallet by its barcode.

Each change validates the card as a whole (name, colour, note, and the barcode value against its
format) before anything is written; a refusal is a `ValidationFailed` naming the fields, and writes
nothing. These cards are the customer's private notes about other shops: no merchant sees them, so no
outbox event is emitted.
"""
import re
from dataclasses import dataclass, fields, replace

from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import ValidationFailed
from wallet.barcodes import validate_barcode
from wallet.models import ExternalCard, Wallet

NAME_MAX_LENGTH = 80
NOTE_MAX_LENGTH = 200
DEFAULT_COLOR = "#6B7280"
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class ExternalCardDraft:
    name: str
    barcode_value: str
    barcode_format: str
    color: str = DEFAULT_COLOR
    note: str = ""


@dataclass(frozen=True)
class ExternalCardChanges:
    """A partial update: a field left as None keeps its current value (none of them can be null)."""

    name: str | None = None
    barcode_value: str | None = None
    barcode_format: str | None = None
    color: str | None = None
    note: str | None = None


def validate_color(value) -> str:
    """`#RRGGBB`, returned in capitals so the same colour is always spelled the same way."""
    if not isinstance(value, str) or not _COLOR.match(value.strip()):
        raise ValidationError("A colour is # followed by six hexadecimal digits, e.g. #FF8800.", code="invalid")
    return value.strip().upper()


def add_external_card(wallet: Wallet, draft: ExternalCardDraft) -> ExternalCard:
    clean = _validated(draft)
    with transaction.atomic():
        return ExternalCard.objects.create(wallet=wallet, **_as_dict(clean))


def update_external_card(card: ExternalCard, changes: ExternalCardChanges) -> ExternalCard:
    """Apply `changes` and validate the result as a whole, so a new format is checked against the
    card's current value and a new value against its current format.

    The row is locked and re-read first: two concurrent edits, one of the format and one of the
    value, each valid on its own, cannot combine into a card whose value its format cannot carry.
    """
    with transaction.atomic():
        current = ExternalCard.objects.select_for_update().get(pk=card.pk)
        merged = replace(
            _draft_of(current),
            **{name: value for name, value in _as_dict(changes).items() if value is not None},
        )
        clean = _validated(merged)
        for name, value in _as_dict(clean).items():
            setattr(current, name, value)
        current.save(update_fields=list(_as_dict(clean)))
    return current


def remove_external_card(card: ExternalCard) -> None:
    ExternalCard.objects.filter(pk=card.pk).delete()


def _validated(draft: ExternalCardDraft) -> ExternalCardDraft:
    problems: dict[str, list[str]] = {}
    name = draft.name.strip() if isinstance(draft.name, str) else ""
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        problems["name"] = [f"A name of 1 to {NAME_MAX_LENGTH} characters is required."]
    note = draft.note.strip() if isinstance(draft.note, str) else None
    if note is None or len(note) > NOTE_MAX_LENGTH:
        problems["note"] = [f"At most {NOTE_MAX_LENGTH} characters."]
    color = _collect(problems, "color", validate_color, draft.color)
    barcode_format = draft.barcode_format
    if barcode_format not in ExternalCard.Format.values:
        problems["barcode_format"] = [f"Use one of {', '.join(ExternalCard.Format.values)}."]
        barcode_value = None
    else:
        barcode_value = _collect(problems, "barcode_value", validate_barcode, barcode_format, draft.barcode_value)
    if problems:
        raise ValidationFailed(_summary(problems), fields=problems)
    return ExternalCardDraft(
        name=name, barcode_value=barcode_value, barcode_format=barcode_format, color=color, note=note
    )


def _collect(problems: dict, field: str, check, *arguments):
    try:
        return check(*arguments)
    except ValidationError as error:
        problems[field] = list(error.messages)
        return None


def _summary(problems: dict) -> str:
    if set(problems) == {"barcode_value"}:
        return problems["barcode_value"][0]
    return "Some fields are invalid."


def _draft_of(card: ExternalCard) -> ExternalCardDraft:
    return ExternalCardDraft(
        name=card.name, barcode_value=card.barcode_value, barcode_format=card.barcode_format,
        color=card.color, note=card.note,
    )


def _as_dict(value) -> dict:
    return {field.name: getattr(value, field.name) for field in fields(value)}
