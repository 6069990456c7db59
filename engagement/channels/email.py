"""The email channel: through Django's email framework, so the operator picks the provider with
EMAIL_BACKEND (django-anymail's backends for Postmark, SES, Mailgun, ...; SMTP; the console).

Every email carries its opt-out link twice: last in the text, and in `List-Unsubscribe` with
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), so mail clients offer their own
unsubscribe button, which POSTs to the same link. Errors are reported without the provider's text,
which may quote the address.
"""
import logging
import smtplib
from email.utils import formataddr, parseaddr

from anymail.exceptions import AnymailError, AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.defaultfilters import linebreaks_filter, urlize
from django.utils.html import format_html

from engagement.channels.base import ChannelSender, ChannelUnavailable, OutgoingMessage, SendFailed, SendOutcome
from engagement.optout import opt_out_url

logger = logging.getLogger(__name__)

# Refusals that name the recipient: sending to this address again is pointless.
PERMANENT_ERRORS = (smtplib.SMTPRecipientsRefused, AnymailRecipientsRefused, AnymailInvalidAddress)
# The provider or the connection failed: another try later may work.
RETRYABLE_ERRORS = (smtplib.SMTPException, AnymailError, OSError)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def email_text(message: OutgoingMessage, link: str) -> str:
    """The plain text, ending with the opt-out link. The dispatcher's text (engagement.content) already
    ends with it; any other caller's gets the footer here, so no email goes out without a way out."""
    text = message.body.strip()
    if not text.endswith(link):
        name = _one_line(message.merchant_name)
        text = (f"{text}\n\n--\nYou get this because you asked {name} for news by email. "
                f"Unsubscribe in one click: {link}")
    return text + "\n"


def email_html(text: str) -> str:
    """A small HTML alternative of the same text: escaped, paragraphs kept, links clickable."""
    return format_html(
        '<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">{}</body></html>',
        linebreaks_filter(urlize(text.strip(), autoescape=True), autoescape=False),
    )


def build_email(message: OutgoingMessage, to_address: str, link: str) -> EmailMultiAlternatives:
    sender_address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    domain = sender_address.rpartition("@")[2] or None
    text = email_text(message, link)
    headers = {
        **message.headers,
        "Message-ID": make_msgid(domain=domain),
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    email = EmailMultiAlternatives(
        subject=_one_line(message.subject),
        body=text,
        from_email=formataddr((_one_line(message.merchant_name), sender_address)),
        to=[to_address],
        headers=headers,
    )
    email.attach_alternative(email_html(text), "text/html")
    return email


class EmailChannel(ChannelSender):
    key = "email"

    def has_address(self, customer, card=None) -> bool:
        return customer.erased_at is None and bool(customer.user.email)

    def send(self, message: OutgoingMessage, customer) -> SendOutcome:
        if not self.has_address(customer):
            raise SendFailed("The customer has no email address.", permanent=True)
        link = message.opt_out_url or opt_out_url(message.customer_id, message.merchant_id, self.key)
        email = build_email(message, customer.user.email, link)
        try:
            sent = email.send()
        except ImproperlyConfigured as error:
            # e.g. anymail's backend without its API key: no email channel on this site until it is set.
            raise ChannelUnavailable(f"The email backend is not configured ({type(error).__name__}).") from None
        except PERMANENT_ERRORS as error:
            logger.info("Email to customer %s refused: %s", message.customer_id, type(error).__name__)
            raise SendFailed(f"The provider refused the recipient ({type(error).__name__}).", permanent=True) from None
        except RETRYABLE_ERRORS as error:
            status = getattr(error, "status_code", None) or getattr(error, "smtp_code", None)
            detail = f"{type(error).__name__}" + (f", status {status}" if status else "")
            logger.warning("Email to customer %s failed: %s", message.customer_id, detail)
            raise SendFailed(f"The email provider failed ({detail}).") from None
        if not sent:
            # A backend that quietly dropped it (anymail's pre_send cancel, no recipients).
            raise SendFailed("The email backend did not send the message.", permanent=True)
        return SendOutcome(provider_message_id=_provider_id(email))


def _provider_id(email: EmailMultiAlternatives) -> str:
    """The provider's id when an anymail backend reports one, else our own Message-ID."""
    status = getattr(email, "anymail_status", None)
    message_id = getattr(status, "message_id", None)
    if message_id is not None and not isinstance(message_id, set):
        return str(message_id)[:200]
    return email.extra_headers["Message-ID"]
