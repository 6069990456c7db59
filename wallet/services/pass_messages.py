"""The message a card's wallet pass shows (a merchant's news, an offer), and telling the wallets.

Apple shows the message on the back of the pass; its `changeMessage` ("%@") makes iOS announce the new
text on the lock screen once the device fetches the updated pass after our push. Google shows it as a
text module on the object. Both updates go out after the change commits (wallet.passes.notify).
"""
from django.db import transaction
from django.utils import timezone

from core.errors import ValidationFailed
from wallet.models import Card
from wallet.passes.notify import schedule_pass_update

MAX_LENGTH = Card._meta.get_field("pass_message").max_length


def set_pass_message(card: Card, text: str) -> Card:
    """Show `text` on the card's pass ("" clears it). Setting the message it already shows changes
    nothing and pushes nothing: Apple would not announce an unchanged value anyway."""
    text = (text or "").strip()
    if len(text) > MAX_LENGTH:
        raise ValidationFailed(fields={"pass_message": [f"At most {MAX_LENGTH} characters."]})
    with transaction.atomic():
        locked = Card.objects.select_for_update().get(pk=card.pk)
        if locked.pass_message != text:
            locked.pass_message, locked.pass_updated_at = text, timezone.now()
            locked.save(update_fields=["pass_message", "pass_updated_at"])
            schedule_pass_update(locked.pk)
    card.pass_message, card.pass_updated_at = locked.pass_message, locked.pass_updated_at
    return card


def refresh_pass(card_id: int) -> None:
    """Tell the wallets that something the pass shows changed outside the card row (its offer line)."""
    with transaction.atomic():
        Card.objects.filter(pk=card_id).update(pass_updated_at=timezone.now())
        schedule_pass_update(card_id)
