"""The card page: a short, unguessable URL that shows a customer's live pass without the app."""
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction

from wallet.models import Card


def card_page_url(card: Card) -> str:
    """The card's page URL, drawing its slug on first use. The slug is the only key to the page,
    so it is random (96 bits), never derived from the card number."""
    if not card.page_slug:
        for _attempt in range(5):
            slug = secrets.token_urlsafe(12)
            try:
                with transaction.atomic():
                    updated = Card.objects.filter(pk=card.pk, page_slug__isnull=True).update(page_slug=slug)
            except IntegrityError:
                continue  # slug collision: draw again
            card.refresh_from_db(fields=["page_slug"])
            if updated or card.page_slug:
                break
    return f"{settings.TESSERA_PUBLIC_URL}/c/{card.page_slug}/"
