"""What every engagement channel implements. The dispatcher decides whether a customer may get a
message (consent, quiet hours, frequency cap); a channel only knows how to reach them and send.

A channel sends one message to one customer. It raises ChannelUnavailable when this site has no
provider configured for it (a decision logged as `channel_unavailable`), and SendFailed when the
provider refused or could not be reached (logged as `provider_error`; `permanent` says a retry is
pointless, e.g. a number that does not exist; otherwise the dispatcher retries it later).
`recipient_opted_out` says the recipient told the provider itself to stop (an SMS "STOP" reply): the
dispatcher then withdraws the customer's consent for the channel, logged as `recipient_opted_out`.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one customer of one merchant on one channel, ready to send."""

    merchant_id: int
    merchant_name: str
    customer_id: int
    card_id: int
    channel: str
    subject: str
    body: str
    opt_out_url: str  # one click (GET shows, POST does) and the customer no longer hears on this channel
    offer_id: int | None = None
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SendOutcome:
    provider_message_id: str = ""


class ChannelUnavailable(Exception):
    """No provider is configured for this channel here."""


class SendFailed(Exception):
    """`permanent`: retrying cannot help. `retry_after`: seconds the provider asked us to wait, if it said.
    `recipient_opted_out`: the provider refused because the recipient opted out with it (implies permanent)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None,
                 recipient_opted_out: bool = False):
        super().__init__(message)
        self.permanent = permanent or recipient_opted_out
        self.retry_after = retry_after
        self.recipient_opted_out = recipient_opted_out


class ChannelSender:
    """Base class of a channel. `key` is one of CommunicationPreference.Channel's values."""

    key: str = ""

    def has_address(self, customer, card=None) -> bool:
        """Whether this customer can be reached on this channel (email, phone, device; for the wallet
        pass, `card`'s pass being in a wallet)."""
        raise NotImplementedError

    def send(self, message: OutgoingMessage, customer) -> SendOutcome:
        raise NotImplementedError
