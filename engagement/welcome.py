"""A new member's welcome offer message (one of TESSERA_ENROLMENT_HOOKS).

Called inside the enrolment's transaction, so the message is written with the card or not at all. For
each active welcome offer of the merchant valid at enrolment (in its period, and for the card's audience
when it has one), one Message is planned, due at once; the dispatcher sends it on the channels the
customer allowed and logs why it did not elsewhere. The database keeps one welcome message per offer and
card, so running this twice writes nothing more.
"""
import datetime as dt

from engagement.models import Message
from engagement.offers import current_offers, fits_card

WELCOME_CHANNELS = ["push", "email", "wallet_pass"]


def card_enrolled(card, occurred_at: dt.datetime) -> list[Message]:
    """Plan the welcome messages of a new card. Returns the messages written now (none on a re-run)."""
    written = []
    for offer in current_offers([card.merchant_id], now=occurred_at).filter(is_welcome=True):
        if not fits_card(offer, card, now=occurred_at):
            continue
        message, created = Message.objects.get_or_create(
            kind=Message.Kind.WELCOME, offer=offer, card=card,
            defaults={"merchant_id": card.merchant_id, "customer_id": card.wallet.customer_id,
                      "channels": list(WELCOME_CHANNELS), "due_at": occurred_at},
        )
        if created:
            written.append(message)
    return written
