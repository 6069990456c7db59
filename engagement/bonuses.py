"""The offer whose multiplier or bonus applies to a purchase at the counter (TESSERA_EARNING_BONUS_HOOK).

Of the points-multiplier and bonus-points offers that hold for the card at the sale's store and time
(see engagement.offers), the one that gives the customer the most points for this very purchase wins;
offers never stack. A tie goes to the offer that ends first (it is the one about to be lost), then to
the older offer. The earn entry then names the offer (offer_id, offer_title), and a refund reverses
what the purchase earned with it, pro rata, like any other earning.

Runs inside the purchase's transaction with the card locked, so it reads little: the current offers
(one query, and one more for their stores when there are any), and one audience check per offer that
has an audience. The purchase service passes the store it has already read and checked; called
without one, the hook reads it itself.
"""
import datetime as dt
from decimal import Decimal

from engagement.models import Offer
from engagement.offers import valid_offers
from merchants.models import Store
from wallet import rules
from wallet.hooks import EarningBonus

EARNING_KINDS = (Offer.Kind.MULTIPLIER, Offer.Kind.BONUS_POINTS)
_NO_END = dt.datetime.max.replace(tzinfo=dt.UTC)
_READ_IT = object()  # no store passed: read the request's store here


def earning_bonus(card, request, occurred_at: dt.datetime, *, store=_READ_IT) -> EarningBonus | None:
    if store is _READ_IT:
        store = None
        if request.store_id is not None:
            store = Store.objects.filter(pk=request.store_id, merchant_id=card.merchant_id).first()
            if store is None:
                return None  # not this merchant's store: the purchase itself is refused
    offers = valid_offers(card, now=occurred_at, store=store, kinds=EARNING_KINDS)
    if not offers:
        return None
    program = card.program
    tier_multiplier = card.tier.multiplier if card.tier_id else Decimal(1)

    def points_with(offer: Offer) -> int:
        multiplier, bonus = _terms(offer)
        return rules.points_for_amount(
            request.amount, request.currency, program.points_per_currency_unit, tier_multiplier * multiplier,
            program.rounding,
        ) + bonus

    best = min(offers, key=lambda offer: (-points_with(offer), offer.valid_until or _NO_END, offer.pk))
    multiplier, bonus = _terms(best)
    return EarningBonus(offer_id=best.pk, title=best.title, multiplier=multiplier, bonus_points=bonus)


def _terms(offer: Offer) -> tuple[Decimal, int]:
    if offer.kind == Offer.Kind.MULTIPLIER:
        return Decimal(offer.multiplier), 0
    return Decimal(1), offer.bonus_points or 0
