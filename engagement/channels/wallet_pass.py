"""The "wallet_pass" channel: the message appears on the card's pass in Apple Wallet or Google Wallet.

The text becomes the card's pass message (wallet.services.pass_messages), which schedules the usual
pass update after commit: Apple devices get the update push, fetch the pass, and iOS announces the new
message through its `changeMessage`; Google's object is patched with it as a text module. Because a
patch alone does not notify a Google Wallet user, the message is also added to the object with
`addMessage` and `messageType: TEXT_AND_NOTIFY` (at most 3 notifying messages per pass per 24 hours:
past that Google answers QuotaExceeded and the message is added as plain TEXT).

A card is reachable when an Apple device registered its pass, or when its Google object has users
(`hasUsers`, set by Google once someone saved it; Tessera records no Google save itself).
"""
from __future__ import annotations

import json
import logging
import threading
import time

from django.conf import settings

from engagement.channels.base import ChannelSender, ChannelUnavailable, OutgoingMessage, SendFailed, SendOutcome
from engagement.content import shorten
from wallet.models import AppleRegistration, Card
from wallet.passes.google.client import GoogleWalletClient, GoogleWalletError, NotFound
from wallet.passes.google.credentials import CredentialsError, TokenRequestError
from wallet.passes.google.objects import object_id
from wallet.passes.notify import wallets_configured
from wallet.services.pass_messages import MAX_LENGTH, set_pass_message

logger = logging.getLogger(__name__)

NOTIFY, TEXT = "TEXT_AND_NOTIFY", "TEXT"
GOOGLE_ERRORS = (GoogleWalletError, TokenRequestError, CredentialsError)  # only the first two may be retryable


class WalletMessagesClient(GoogleWalletClient):
    """The Wallet REST client plus the object's addMessage call."""

    def add_message(self, resource_id: str, message: dict) -> dict:
        return self._request("POST", f"/loyaltyObject/{self._id(resource_id)}/addMessage", {"message": message})


_clients: dict[tuple, WalletMessagesClient] = {}
_clients_lock = threading.Lock()


def google_configured() -> bool:
    return bool(settings.GOOGLE_WALLET.get("SERVICE_ACCOUNT_FILE"))


def apple_configured() -> bool:
    return bool(settings.APNS.get("KEY_PATH"))


def google_client() -> WalletMessagesClient:
    """This process's client for the current settings, so its access token is reused across messages."""
    config = settings.GOOGLE_WALLET
    key = (config.get("SERVICE_ACCOUNT_FILE"), config.get("API_BASE_URL"), config.get("TOKEN_URL"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = WalletMessagesClient.from_settings()
        return client


def pass_text(message: OutgoingMessage) -> str:
    """The text (the dispatcher already shaped it for the pass), never longer than a pass message."""
    return shorten((message.body or message.subject).strip(), MAX_LENGTH)


def google_saved(card: Card) -> bool:
    """Whether someone saved the card's Google pass. Raises GoogleWalletError when Google cannot say."""
    try:
        return bool(google_client().get_object(object_id(card)).get("hasUsers"))
    except NotFound:
        return False


def _quota_exceeded(error: GoogleWalletError) -> bool:
    return "quotaexceeded" in (str(error) + json.dumps(error.body)).replace(" ", "").lower()


def _google_message(message: OutgoingMessage, message_type: str) -> dict:
    return {
        "header": message.subject or message.merchant_name,
        "body": message.body,
        "id": f"tessera-{message.merchant_id}-{message.offer_id or 0}-{int(time.time())}",
        "messageType": message_type,
    }


class WalletPassChannel(ChannelSender):
    key = "wallet_pass"

    def has_address(self, customer, card: Card | None = None) -> bool:
        """Whether `card`'s pass (without `card`: any active card's) is in a wallet. When Google cannot
        be asked just now the answer is yes, and the send decides."""
        cards = [card] if card is not None else list(
            Card.objects.filter(wallet__customer=customer, status=Card.Status.ACTIVE)
        )
        if AppleRegistration.objects.filter(card__in=[c.pk for c in cards]).exists():
            return True
        if not google_configured():
            return False
        for each in cards:
            try:
                if google_saved(each):
                    return True
            except GOOGLE_ERRORS as error:
                logger.warning("Google Wallet could not say whether card %s is saved: %s", each.pk, error)
                return True
        return False

    def send(self, message: OutgoingMessage, customer) -> SendOutcome:
        if not wallets_configured():
            raise ChannelUnavailable("Neither Apple Wallet pushes nor Google Wallet are configured.")
        card = Card.objects.filter(pk=message.card_id, wallet__customer=customer).first()
        if card is None:
            raise SendFailed("The card is not this customer's.", permanent=True)
        reached = []
        if apple_configured() and AppleRegistration.objects.filter(card=card).exists():
            reached.append("apple")
        failure = None
        if google_configured():
            try:
                if google_saved(card):
                    reached.append(f"google:{self._notify_google(card, message)}")
            except GOOGLE_ERRORS as error:
                failure = error
                logger.warning("Google Wallet message to card %s failed: %s", card.pk, error)
        if not reached:
            if failure is not None:
                raise SendFailed(f"Google Wallet: {failure}"[:300], permanent=not getattr(failure, "retryable", False))
            raise SendFailed("The card's pass is in no wallet.", permanent=True)
        set_pass_message(card, pass_text(message))
        return SendOutcome(provider_message_id=",".join(reached)[:200])

    @staticmethod
    def _notify_google(card: Card, message: OutgoingMessage) -> str:
        client, resource_id = google_client(), object_id(card)
        try:
            client.add_message(resource_id, _google_message(message, NOTIFY))
            return NOTIFY
        except GoogleWalletError as error:
            if not _quota_exceeded(error):
                raise
        client.add_message(resource_id, _google_message(message, TEXT))
        return TEXT
