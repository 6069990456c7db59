"""A test-only channel for every channel key: it records what it was asked to send instead of sending.

Register it with the `recording_channels` fixture (tests/engagement/conftest.py), which points
settings.TESSERA_ENGAGEMENT_CHANNELS at the classes below and empties the outbox. The dispatcher builds
a fresh sender per run, so what a test arranges lives on the module-level OUTBOX.
"""
import threading
import time
from dataclasses import dataclass, field

from engagement.channels.base import ChannelSender, ChannelUnavailable, OutgoingMessage, SendFailed, SendOutcome

CHANNEL_PATHS = {
    "email": "tests.engagement.recording_channel.RecordingEmail",
    "sms": "tests.engagement.recording_channel.RecordingSms",
    "push": "tests.engagement.recording_channel.RecordingPush",
    "wallet_pass": "tests.engagement.recording_channel.RecordingWalletPass",
}


@dataclass
class Outbox:
    """What was sent, and how a test wants the channels to behave."""

    sent: list[OutgoingMessage] = field(default_factory=list)
    no_address: set[tuple[str, int]] = field(default_factory=set)  # (channel, customer id)
    failing: dict[str, SendFailed] = field(default_factory=dict)  # channel -> what send raises
    unavailable: set[str] = field(default_factory=set)  # channels whose provider is not configured
    address_delay: float = 0.0  # seconds has_address takes: widens race windows in concurrency tests
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self):
        with self.lock:
            self.sent.clear()
            self.no_address.clear()
            self.failing.clear()
            self.unavailable.clear()
            self.address_delay = 0.0

    def to(self, customer, channel: str | None = None) -> list[OutgoingMessage]:
        """What `customer` received (on `channel`), in sending order."""
        return [m for m in self.sent if m.customer_id == customer.pk and channel in (None, m.channel)]


OUTBOX = Outbox()


class _Recording(ChannelSender):
    def has_address(self, customer, card=None) -> bool:
        if OUTBOX.address_delay:
            time.sleep(OUTBOX.address_delay)
        if self.key in OUTBOX.unavailable:
            raise ChannelUnavailable(f"No {self.key} provider configured.")
        return (self.key, customer.pk) not in OUTBOX.no_address

    def send(self, message: OutgoingMessage, customer) -> SendOutcome:
        assert message.channel == self.key and message.customer_id == customer.pk
        failure = OUTBOX.failing.get(self.key)
        if failure is not None:
            raise failure
        with OUTBOX.lock:
            OUTBOX.sent.append(message)
            number = len(OUTBOX.sent)
        return SendOutcome(provider_message_id=f"{self.key}-{number}")


class RecordingEmail(_Recording):
    key = "email"


class RecordingSms(_Recording):
    key = "sms"


class RecordingPush(_Recording):
    key = "push"


class RecordingWalletPass(_Recording):
    key = "wallet_pass"
