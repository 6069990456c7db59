"""How long a text is in SMS terms, and cutting one to fit: what Twilio bills is segments, not characters.

GSM 03.38: a text whose every character is in the GSM-7 alphabet is sent in 7-bit units, 160 to a
single SMS or 153 to each part of a longer one (the rest carries the header that joins them); the
extension characters (€ [ ] { } ^ ~ \\ |) take two units. One character outside it (an emoji, most
accented letters, Cyrillic, a curly quote) sends the whole text as UCS-2: 70 UTF-16 units alone or 67
a part, an emoji counting two. A campaign text cut by characters to "two segments of GSM-7" is five
segments of UCS-2; so texts are cut to MAX_SEGMENTS by the encoding they will really use
(engagement.content.fit_sms).
"""
import math

MAX_SEGMENTS = 2
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def units(text: str) -> int:
    """7-bit units for a GSM-7 text, UTF-16 code units otherwise."""
    if is_gsm7(text):
        return sum(2 if char in GSM7_EXTENSION else 1 for char in text)
    return len(text.encode("utf-16-le")) // 2


def _sizes(text: str) -> tuple[int, int]:
    """Units in a single SMS, and in each part of a longer one, for the text's encoding."""
    return (160, 153) if is_gsm7(text) else (70, 67)


def segments(text: str) -> int:
    """How many SMS the text is sent as (and billed for)."""
    single, part = _sizes(text)
    count = units(text)
    return 1 if count <= single else math.ceil(count / part)


def room_left(text: str, max_segments: int = MAX_SEGMENTS) -> int:
    """Units still free after `text` in `max_segments` joined parts of its encoding (negative: over)."""
    return _sizes(text)[1] * max_segments - units(text)
