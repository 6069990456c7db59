"""Being built (issue 8): who an audience is. This first cut knows only "every active member" and
tiers; the full rules come next."""
import datetime as dt

from wallet.models import Card


def audience_cards(merchant, audience, *, now: dt.datetime):
    """The active cards of `merchant`'s members in `audience` (None: every active member)."""
    cards = Card.objects.filter(merchant=merchant, status=Card.Status.ACTIVE, wallet__customer__erased_at__isnull=True)
    if audience is not None and audience.pk and audience.tiers.exists():
        cards = cards.filter(tier__in=audience.tiers.all())
    return cards


def card_matches(audience, card, *, now: dt.datetime) -> bool:
    """Whether one card is in `audience` (None: every active member)."""
    return audience_cards(card.merchant, audience, now=now).filter(pk=card.pk).exists()
