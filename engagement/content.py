"""The words a customer gets on each channel: one campaign text shaped for SMS, email, push and pass.

Plain text only (an email channel may wrap it in HTML). Every SMS ends with its one-click opt-out
link and every email with an opt-out line, so no message ever reaches someone without a way out.
"""
from dataclasses import dataclass

from engagement import sms_length
from engagement.models import Channel

PUSH_MAX = 240  # what a lock screen shows before cutting
PASS_MAX = 200  # Card.pass_message's length
ELLIPSIS = "..."  # ASCII: a Unicode ellipsis would switch an SMS to UCS-2 and halve its length


@dataclass(frozen=True)
class Content:
    subject: str
    body: str


def welcome_text(merchant_name: str, offer) -> tuple[str, str]:
    """Subject and body of a new member's welcome-offer message."""
    return f"Welcome to {merchant_name}: {offer.title}", offer.description or offer.title


def render(channel: str, *, merchant_name: str, subject: str, body: str, opt_out_url: str) -> Content:
    """The subject and body to send on `channel`."""
    subject = _one_line(subject)
    body = body.strip()
    if channel == Channel.SMS:
        return Content(subject, sms_body(merchant_name, body or subject, opt_out_url))
    if channel == Channel.EMAIL:
        footer = (f"You get this because you asked {merchant_name} for news by email. "
                  f"Unsubscribe in one click: {opt_out_url}")
        return Content(subject, f"{body}\n\n--\n{footer}")
    if channel == Channel.PUSH:
        return Content(subject, shorten(_one_line(body), PUSH_MAX))
    if channel == Channel.WALLET_PASS:
        return Content(subject, shorten(_one_line(body or subject), PASS_MAX))
    raise ValueError(f"Unknown channel {channel!r}")


def sms_body(merchant_name: str, text: str, opt_out_url: str) -> str:
    """"<merchant>: <text> Stop: <link>", the text shortened so the whole is at most two SMS."""
    prefix = f"{merchant_name}: "
    suffix = f" Stop: {opt_out_url}"
    if sms_length.room_left(prefix + suffix) < 20:
        prefix = ""  # an absurdly long merchant name or link: the text still beats the name
    return fit_sms(prefix, _one_line(text), suffix)


def fit_sms(prefix: str, text: str, suffix: str, max_segments: int = sms_length.MAX_SEGMENTS) -> str:
    """prefix + text + suffix, the text shortened (at a word, with "...") until the whole is at most
    `max_segments` SMS in the encoding it ends up in (engagement.sms_length); prefix and suffix (the
    opt-out link) are never cut. The longest cut that fits is searched for (halving): characters cost
    one or two units, and cutting the one non-GSM character away switches the text to GSM-7's longer
    segments, so no count of characters can say in advance where to cut."""

    def body(limit: int) -> str:
        return f"{prefix}{shorten(text, limit)}{suffix}"

    if sms_length.segments(body(len(text))) <= max_segments:
        return body(len(text))
    fits, too_long = 0, len(text)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if sms_length.segments(body(middle)) <= max_segments:
            fits = middle
        else:
            too_long = middle
    return body(fits)


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    if " " in cut[len(cut) // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(text.split())
