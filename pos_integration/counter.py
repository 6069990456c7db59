"""What a counter does with a scanned code: find the card (and coupon) it stands for, for this merchant.

A code is one of three things, told apart by shape: a static card number (digits with a Luhn
check digit, printed as Code 128), a coupon code (from a redemption), or a rotating pass token
(signed, from the QR). Anything of another merchant is simply not found, so a device learns
nothing about other merchants' customers.
"""
from dataclasses import dataclass

from django.db.models import QuerySet

from core.errors import NotFound, ValidationFailed
from pos_integration.models import PosDevice
from wallet import rules
from wallet.models import Card, Redemption
from wallet.passes import tokens


class TokenRejected(ValidationFailed):
    code = "token_rejected"
    default_message = "This pass code is not valid now; ask the customer to refresh their pass."


@dataclass(frozen=True)
class Identified:
    card: Card
    method: str  # "card_number", "coupon" or "token"
    coupon: Redemption | None = None
    token_key_id: str | None = None  # for a token: which key signed it and for which time step,
    token_step: int | None = None  # so a redemption can spend it once


# Signed for another merchant, or naming no card of ours: not found, as for a number or coupon.
_NOT_OURS = {tokens.WRONG_MERCHANT, tokens.UNKNOWN_CARD, tokens.UNKNOWN_KEY}


def summary_cards() -> QuerySet[Card]:
    """Cards with what a card summary shows (tier, program, the customer's first name) in one query."""
    return Card.objects.select_related("tier", "program", "wallet__customer__user")


def identify(device: PosDevice, code: str, *, at=None, cards: QuerySet[Card] | None = None) -> Identified:
    """`at`: judge a token's time window at this moment (an offline sale's original time), not now.
    `cards`: the Card queryset to load the card from; by default with what a summary shows. A write
    that locks and re-reads the card anyway (a purchase) passes `Card.objects.all()`: joining the
    customer's user, tier and program only to drop them costs more than the rest of the lookup."""
    code = (code or "").strip()
    if not code or len(code) > 200:
        raise ValidationFailed("Scan or type a card number, coupon or pass code.", fields={"code": ["Required."]})
    if cards is None:
        cards = summary_cards()
    if code.isdigit():
        card = cards.filter(number=code, merchant_id=device.merchant_id).first() if rules.is_valid_card_number(
            code
        ) else None
        if card is None:
            raise NotFound("No card with this number here.")
        return Identified(card=card, method="card_number")
    if len(code) <= 16 and set(code.upper()) <= set(rules.COUPON_ALPHABET):
        coupon = (
            Redemption.objects.select_related("reward", "card")
            .filter(coupon_code=code.upper(), merchant_id=device.merchant_id)
            .first()
        )
        if coupon is None:
            raise NotFound("No coupon with this code here.")
        return Identified(card=cards.get(pk=coupon.card_id), method="coupon", coupon=coupon)
    check = tokens.verify_token(code, at, merchant=device.merchant)
    if not check.ok:
        if check.reason in _NOT_OURS:
            raise NotFound("No card for this pass code here.")
        raise TokenRejected(fields={"reason": [check.reason]})
    return Identified(
        card=cards.get(pk=check.card.pk), method="token", token_key_id=check.key_id, token_step=check.step
    )
