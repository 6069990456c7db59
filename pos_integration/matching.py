"""Finding a Tessera card number in the free text a POS keeps (a sale's note, a customer's
reference): cashiers type it with spaces or dashes, so those are allowed between digits, and only
a number whose check digit is right counts. Shared by the connectors."""
import re

from wallet import rules

_CANDIDATE = re.compile(rf"(?<!\d)\d(?:[ -]?\d){{{rules.CARD_NUMBER_LENGTH - 1}}}(?!\d)")


def card_number_in(*texts) -> str:
    """The first valid card number written in any of `texts` (non-strings are skipped), or ""."""
    for text in texts:
        for candidate in _CANDIDATE.findall(text if isinstance(text, str) else ""):
            digits = re.sub(r"[ -]", "", candidate)
            if rules.is_valid_card_number(digits):
                return digits
    return ""
