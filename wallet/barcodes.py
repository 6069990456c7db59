"""What each barcode symbology can carry, checked before a third-party card is kept in the wallet.

A card whose barcode cannot be drawn, or whose check digit is wrong, would fail at the till, where the
customer can least fix it; so a value is refused with a message that says exactly what is wrong.
The rules are the symbologies' own (GS1 General Specifications for EAN/UPC check digits, ISO/IEC 16388
for Code 39, ISO/IEC 15417 for Code 128); the 2D limits are character counts we allow, kept below
each symbology's capacity.
"""
import re

from django.core.exceptions import ValidationError

from wallet.models.external_cards import ExternalCard

Format = ExternalCard.Format

CODE_128_MAX_LENGTH = 80
# Characters, not bytes; each below the symbology's capacity for byte data at its largest size.
TWO_D_MAX_LENGTH = {Format.QR: 2000, Format.PDF417: 1800, Format.AZTEC: 1900, Format.DATA_MATRIX: 2000}

_GS1_LENGTHS = {Format.EAN_13: 13, Format.EAN_8: 8, Format.UPC_A: 12}
_CODE_39 = re.compile(r"^[0-9A-Z \-.$/+%]+$")
_CODABAR_BODY = re.compile(r"^[0-9\-$:/.+]+$")
_CODABAR_START_STOP = "ABCD"


def validate_barcode(barcode_format: str, value: str) -> str:
    """Return `value` without surrounding whitespace if `barcode_format` can carry it, else raise
    `django.core.exceptions.ValidationError` with a message a customer can act on."""
    if not isinstance(value, str):
        raise ValidationError("The barcode value must be text.", code="invalid")
    value = value.strip()
    if not value:
        raise ValidationError("The barcode value is empty.", code="required")
    if "\x00" in value:
        raise ValidationError("The barcode value contains a NUL character.", code="invalid")
    try:
        kind = Format(barcode_format)
    except ValueError:
        known = ", ".join(choice.value for choice in Format)
        message = f"{barcode_format!r} is not a barcode format; use one of {known}."
        raise ValidationError(message, code="invalid") from None
    if kind in _GS1_LENGTHS:
        _check_gs1(kind, value)
    elif kind == Format.ITF:
        _check_itf(value)
    elif kind == Format.CODE_39:
        _check_code_39(value)
    elif kind == Format.CODABAR:
        _check_codabar(value)
    elif kind == Format.CODE_128:
        _check_code_128(value)
    else:
        _check_length(kind, value, TWO_D_MAX_LENGTH[kind])
    return value


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for `digits` (the number without its check digit): weights 3 and 1
    alternate from the rightmost digit, and the check digit tops the sum up to a multiple of ten."""
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def _check_gs1(kind: Format, value: str) -> None:
    length = _GS1_LENGTHS[kind]
    if not value.isascii() or not value.isdigit():
        raise ValidationError(f"{kind.label} has digits only; {value!r} has other characters.", code="invalid")
    if len(value) != length:
        raise ValidationError(f"{kind.label} has exactly {length} digits; this has {len(value)}.", code="invalid")
    expected = gs1_check_digit(value[:-1])
    if int(value[-1]) != expected:
        raise ValidationError(
            f"{kind.label} check digit does not match: the last digit is {value[-1]}, but the first "
            f"{length - 1} digits call for {expected}. Check the number on the card.",
            code="check_digit",
        )


def _check_itf(value: str) -> None:
    if not value.isascii() or not value.isdigit():
        raise ValidationError("Interleaved 2 of 5 has digits only.", code="invalid")
    if len(value) % 2:
        raise ValidationError(
            f"Interleaved 2 of 5 encodes digits in pairs, so it needs an even number of them; this has {len(value)}.",
            code="invalid",
        )


def _check_code_39(value: str) -> None:
    if "*" in value:
        raise ValidationError(
            "Leave out the '*': it marks the start and end of a Code 39 barcode and is not part of its value.",
            code="invalid",
        )
    if not _CODE_39.match(value):
        if _CODE_39.match(value.upper()):
            raise ValidationError("Code 39 has capital letters only; write the value in capitals.", code="invalid")
        raise ValidationError(
            "Code 39 carries only 0-9, A-Z, space and - . $ / + %; "
            f"not {_first_outside(value, _CODE_39)!r}.",
            code="invalid",
        )


def _check_codabar(value: str) -> None:
    body = value
    starts, ends = value[0].upper() in _CODABAR_START_STOP, value[-1].upper() in _CODABAR_START_STOP
    if starts or ends:
        if len(value) == 1:
            raise ValidationError("Codabar needs at least one character between its start and stop.", code="invalid")
        if not (starts and ends):
            raise ValidationError(
                "Codabar start and stop characters (A-D) come in pairs: give both or neither.", code="invalid"
            )
        if not (value[0] in _CODABAR_START_STOP and value[-1] in _CODABAR_START_STOP):
            raise ValidationError("Codabar start and stop characters are capitals A-D.", code="invalid")
        body = value[1:-1]
    if not body:
        raise ValidationError("Codabar needs at least one character between its start and stop.", code="invalid")
    if not _CODABAR_BODY.match(body):
        raise ValidationError(
            "Codabar carries only digits and - $ : / . + (with optional A-D start and stop characters); "
            f"not {_first_outside(body, _CODABAR_BODY)!r}.",
            code="invalid",
        )


def _check_code_128(value: str) -> None:
    _check_length(Format.CODE_128, value, CODE_128_MAX_LENGTH)
    for character in value:
        if not 32 <= ord(character) <= 126:
            raise ValidationError(
                f"Code 128 carries printable ASCII characters only (space to '~'); not {character!r}.",
                code="invalid",
            )


def _check_length(kind: Format, value: str, maximum: int) -> None:
    if len(value) > maximum:
        raise ValidationError(
            f"{kind.label} holds at most {maximum} characters here; this has {len(value)}.", code="max_length"
        )


def _first_outside(value: str, allowed: re.Pattern) -> str:
    return next(character for character in value if not allowed.match(character))
