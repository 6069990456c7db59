"""Keeping the offer line on wallet passes current.

A pass shows its card's best offer now (engagement.ranking.pass_offer_line), computed when the pass is
built. Offers open and close by the hour (a breakfast window, a weekend multiplier), so a beat job asks,
for every card whose pass may show an offer, what the line is now, and updates the passes whose line
changed since the last run (PassOfferLine): Apple devices get the update push, Google objects a patch.

Which cards: active cards of merchants with an offer running now (or ended in the last run's span), and
cards whose pass still shows a line (its offer may have ended). With only Apple configured, only cards
registered on a device; with Google Wallet, every such card (Google does not tell us who saved a pass).
Nothing at all when no wallet is configured.
"""
import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from engagement.models import Offer, PassOfferLine
from engagement.ranking import pass_offer_line
from wallet.models import Card
from wallet.passes.notify import wallets_configured
from wallet.services.pass_messages import refresh_pass

logger = logging.getLogger(__name__)

ENDED_WITHIN = dt.timedelta(hours=2)  # offers that ended since about the last run still change a line


def refresh_pass_offer_lines(now: dt.datetime | None = None) -> int:
    """Update every pass whose offer line changed; returns how many passes were updated."""
    if not wallets_configured():
        return 0
    now = now or timezone.now()
    running = (Offer.objects.filter(is_active=True, valid_from__lte=now)
               .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now - ENDED_WITHIN))
               .values("merchant_id"))
    showing = PassOfferLine.objects.exclude(line="").values("card_id")
    cards = Card.objects.filter(status=Card.Status.ACTIVE).filter(Q(merchant_id__in=running) | Q(pk__in=showing))
    if not settings.GOOGLE_WALLET.get("SERVICE_ACCOUNT_FILE"):
        cards = cards.filter(apple_registrations__isnull=False).distinct()
    shown = dict(PassOfferLine.objects.filter(card__in=cards).values_list("card_id", "line"))
    updated = 0
    for card in cards.select_related("wallet__customer", "merchant", "program").order_by("pk").iterator(chunk_size=500):
        line = pass_offer_line(card, now=now) or ""
        if shown.get(card.pk, "") == line:
            continue
        PassOfferLine.objects.update_or_create(card=card, defaults={"line": line, "updated_at": now})
        refresh_pass(card.pk)
        updated += 1
    if updated:
        logger.info("offer lines changed on %s passes", updated)
    return updated
