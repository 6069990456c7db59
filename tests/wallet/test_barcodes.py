"""What each barcode format accepts, with real card numbers, and what a customer is told when it does not."""
import pytest
from django.core.exceptions import ValidationError

from wallet.barcodes import gs1_check_digit, validate_barcode

VALID = [
    ("ean13", "4006381333931"),
    ("ean13", "5901234123457"),
    ("ean13", "0000000000000"),
    ("ean8", "73513537"),
    ("ean8", "96385074"),
    ("upca", "036000291452"),
    ("upca", "012345678905"),
    ("itf", "12"),
    ("itf", "00012345678905"),
    ("code39", "ABC-1234"),
    ("code39", "CARD 42 $/+%."),
    ("codabar", "31117013206375"),
    ("codabar", "A40156B"),
    ("codabar", "C12-34:56/7.8+9$D"),
    ("code128", "Hello, World! 123 ~"),
    ("code128", "x" * 80),
    ("qr", "https://example.com/card?id=42&name=Zoë ✓"),
    ("qr", "q" * 2000),
    ("pdf417", "p" * 1800),
    ("aztec", "a" * 1900),
    ("datamatrix", "d" * 2000),
]

INVALID = [
    # (format, value, words the message must contain)
    ("ean13", "4006381333932", "check digit"),
    ("ean13", "400638133393", "exactly 13 digits"),
    ("ean13", "40063813339311", "exactly 13 digits"),
    ("ean13", "40063813339A1", "digits only"),
    ("ean13", "４００６３８１３３３９３１", "digits only"),  # full-width digits are not barcode digits
    ("ean8", "73513538", "check digit"),
    ("ean8", "7351353", "exactly 8 digits"),
    ("upca", "036000291453", "check digit"),
    ("upca", "36000291452", "exactly 12 digits"),
    ("upca", "4006381333931", "exactly 12 digits"),
    ("itf", "123", "even number"),
    ("itf", "12A4", "digits only"),
    ("code39", "abc123", "capital"),
    ("code39", "*ABC123*", "'*'"),
    ("code39", "AB#12", "'#'"),
    ("codabar", "A1234", "pairs"),
    ("codabar", "1234B", "pairs"),
    ("codabar", "a1234b", "capitals A-D"),
    ("codabar", "AB", "at least one character"),
    ("codabar", "12*34", "'*'"),
    ("code128", "x" * 81, "at most 80"),
    ("code128", "café", "printable ASCII"),
    ("code128", "tab\there", "printable ASCII"),
    ("qr", "q" * 2001, "at most 2000"),
    ("pdf417", "p" * 1801, "at most 1800"),
    ("aztec", "a" * 1901, "at most 1900"),
    ("datamatrix", "d" * 2001, "at most 2000"),
]

FORMATS = sorted({barcode_format for barcode_format, _ in VALID})


@pytest.mark.parametrize(("barcode_format", "value"), VALID)
def test_valid_values_are_accepted_unchanged(barcode_format, value):
    assert validate_barcode(barcode_format, value) == value


@pytest.mark.parametrize(("barcode_format", "value", "explanation"), INVALID)
def test_invalid_values_are_refused_with_a_message_that_says_why(barcode_format, value, explanation):
    with pytest.raises(ValidationError) as refused:
        validate_barcode(barcode_format, value)

    assert explanation in refused.value.messages[0]


def test_every_format_has_valid_and_invalid_examples():
    assert {barcode_format for barcode_format, *_ in INVALID} == set(FORMATS)
    assert len(FORMATS) == 11


def test_surrounding_whitespace_is_removed():
    assert validate_barcode("ean13", "  4006381333931\n") == "4006381333931"
    assert validate_barcode("code39", " CARD 42 ") == "CARD 42"


@pytest.mark.parametrize("barcode_format", FORMATS)
def test_an_empty_or_blank_value_is_refused_in_every_format(barcode_format):
    for value in ("", "   \t"):
        with pytest.raises(ValidationError, match="empty"):
            validate_barcode(barcode_format, value)


def test_a_nul_character_is_refused_even_where_any_text_is_allowed():
    with pytest.raises(ValidationError, match="NUL"):
        validate_barcode("qr", "abc\x00def")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValidationError, match="not a barcode format"):
        validate_barcode("upce", "01234565")


def test_the_check_digit_message_names_the_digit_the_number_calls_for():
    with pytest.raises(ValidationError) as refused:
        validate_barcode("ean13", "4006381333930")

    assert "the first 12 digits call for 1" in refused.value.messages[0]


@pytest.mark.parametrize(
    ("without_check_digit", "check_digit"),
    [("400638133393", 1), ("7351353", 7), ("03600029145", 2), ("590123412345", 7)],
)
def test_gs1_check_digit(without_check_digit, check_digit):
    assert gs1_check_digit(without_check_digit) == check_digit
