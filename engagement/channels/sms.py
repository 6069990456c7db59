"""The SMS channel: a short text that names the merchant and ends with its opt-out link.

The provider is a plug-in (settings.TESSERA_SMS_PROVIDER, a dotted path to an SmsProvider class);
Twilio is the one shipped. A site without the provider's credentials has no SMS channel: sending
raises ChannelUnavailable, which the dispatcher logs as `channel_unavailable`.
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from engagement.channels.base import ChannelSender, ChannelUnavailable, OutgoingMessage, SendOutcome
from engagement.channels.twilio import PRODUCTION_BASE_URL, TwilioClient
from engagement.content import fit_sms
from engagement.optout import opt_out_url

DEFAULT_PROVIDER = "engagement.channels.sms.TwilioSmsProvider"


class SmsProvider:
    """Sends one text. Built once per send from settings; raise ChannelUnavailable from
    `from_settings` when this site has no credentials for it."""

    @classmethod
    def from_settings(cls) -> "SmsProvider":
        raise NotImplementedError

    def send_sms(self, to_e164: str, body: str) -> str:
        """The provider's message id. Raises SendFailed (permanent when the number cannot be reached)."""
        raise NotImplementedError


class TwilioSmsProvider(SmsProvider):
    def __init__(self, client: TwilioClient):
        self.client = client

    @classmethod
    def from_settings(cls) -> "TwilioSmsProvider":
        account_sid = getattr(settings, "TWILIO_ACCOUNT_SID", "")
        auth_token = getattr(settings, "TWILIO_AUTH_TOKEN", "")
        if not (account_sid and auth_token):
            raise ChannelUnavailable("Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).")
        try:
            client = TwilioClient(
                account_sid=account_sid, auth_token=auth_token,
                from_number=getattr(settings, "TWILIO_FROM_NUMBER", ""),
                messaging_service_sid=getattr(settings, "TWILIO_MESSAGING_SERVICE_SID", ""),
                base_url=getattr(settings, "TWILIO_API_BASE", PRODUCTION_BASE_URL),
            )
        except ImproperlyConfigured as error:
            raise ChannelUnavailable(str(error)) from None
        return cls(client)

    def send_sms(self, to_e164: str, body: str) -> str:
        with self.client:
            return self.client.send_message(to_e164, body)


def sms_provider() -> SmsProvider:
    provider_class = import_string(getattr(settings, "TESSERA_SMS_PROVIDER", DEFAULT_PROVIDER))
    if not (isinstance(provider_class, type) and issubclass(provider_class, SmsProvider)):
        raise ImproperlyConfigured(f"TESSERA_SMS_PROVIDER {provider_class!r} is not an SmsProvider.")
    return provider_class.from_settings()


def sms_text(message: OutgoingMessage, link: str) -> str:
    """The text to send, ending with "Stop: <link>". The dispatcher's text (engagement.content) is already
    shaped so; any other becomes "<merchant>: <text>" shortened to fit, the link last so it is never cut."""
    if message.body.rstrip().endswith(f"Stop: {link}"):
        return message.body.strip()
    footer = f" Stop: {link}"
    text = " ".join(message.body.split())  # one line: newlines and runs of spaces cost characters
    name = " ".join(message.merchant_name.split())
    if name and not text.lower().startswith(name.lower()):
        text = f"{name}: {text}"
    return fit_sms("", text, footer)


class SmsChannel(ChannelSender):
    key = "sms"

    def has_address(self, customer, card=None) -> bool:
        return customer.erased_at is None and bool(customer.user.phone)

    def send(self, message: OutgoingMessage, customer) -> SendOutcome:
        provider = sms_provider()
        link = message.opt_out_url or opt_out_url(message.customer_id, message.merchant_id, self.key)
        return SendOutcome(provider_message_id=provider.send_sms(customer.user.phone, sms_text(message, link)))
