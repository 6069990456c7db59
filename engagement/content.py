"""The words a customer gets on each channel: one campaign text shaped for SMS, email, push and pass.

Plain text only (an email channel may wrap it in HTML). Every SMS ends with its one-click opt-out
link and every email with an opt-out line, so no message ever reaches someone without a way out.
"""
from dataclasses import dataclass

from engagement.models import Channel

SMS_MAX = 320  # two concatenated GSM-7 segments: longer texts cost more and arrive split
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
    """"<merchant>: <text> Stop: <link>", the text shortened so the whole fits SMS_MAX."""
    prefix = f"{merchant_name}: "
    suffix = f" Stop: {opt_out_url}"
    room = SMS_MAX - len(prefix) - len(suffix)
    if room < 20:  # an absurdly long merchant name or link: the text still beats the name
        prefix = ""
        room = SMS_MAX - len(suffix)
    return f"{prefix}{shorten(_one_line(text), max(room, 0))}{suffix}"


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
