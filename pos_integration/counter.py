"""What a counter does with a scanned code: find the card (and coupon) it stands for, for this merchant.

A code is one of three things, told apart by shape: a static card number (digits with a Luhn
check digit, printed as Code 128), a coupon code (from a redemption), or a rotating pass token
(signed, from the QR). Anything of another merchant is simply not found, so a device learns
nothing about other merchants' customers.
"""
from dataclasses import dataclass

from django.db import connection

from core.errors import NotFound, ValidationFailed
from core.joined_select import JoinedSelect
from merchants.models import Reward
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


# What a card summary shows (tier, program, the customer's first name), read with the card in one
# prepared statement; a write that locks and re-reads the card anyway (a purchase) reads the bare card
# (with its program, which a token's time window needs).
_SUMMARY = ("tier", "program", "wallet__customer__user")
_BY_NUMBER = "t0.number = %s AND t0.merchant_id = %s"
_CARD_BY_NUMBER = {True: JoinedSelect(Card, _SUMMARY, where=_BY_NUMBER), False: JoinedSelect(Card, where=_BY_NUMBER)}
_CARD_BY_ID = {True: JoinedSelect(Card, _SUMMARY, where="t0.id = %s"),
               False: JoinedSelect(Card, ("program",), where="t0.id = %s")}


def identify(device: PosDevice, code: str, *, at=None, summary: bool = True) -> Identified:
    """`at`: judge a token's time window at this moment (an offline sale's original time), not now.
    `summary`: load what a card summary shows with the card (False for a write that locks and re-reads
    the card anyway: joining the customer's user and tier only to drop them costs more than the lookup)."""
    code = (code or "").strip()
    if not code or len(code) > 200:
        raise ValidationFailed("Scan or type a card number, coupon or pass code.", fields={"code": ["Required."]})
    card_by_id = _CARD_BY_ID[summary].first
    if code.isdigit():
        card = _CARD_BY_NUMBER[summary].first(code, device.merchant_id) if rules.is_valid_card_number(code) else None
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
        return Identified(card=card_by_id(coupon.card_id), method="coupon", coupon=coupon)
    check = tokens.verify_token(code, at, merchant=device.merchant, load_card=card_by_id)
    if not check.ok:
        if check.reason in _NOT_OURS:
            raise NotFound("No card for this pass code here.")
        raise TokenRejected(fields={"reason": [check.reason]})
    return Identified(card=check.card, method="token", token_key_id=check.key_id, token_step=check.step)


def redeemable_rewards(card: Card) -> list[dict]:
    """The program's rewards this card can take now (active, in stock, within its balance), cheapest
    first, as the scan shows them. One prepared statement: the ORM compiled this one on every scan."""
    table = connection.ops.quote_name(Reward._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, name, points_cost FROM {table} WHERE program_id = %s AND is_active = %s "  # noqa: S608
            "AND points_cost <= %s AND (stock IS NULL OR stock <> 0) ORDER BY points_cost, id",
            [card.program_id, True, max(card.balance, 0)],
        )
        return [{"id": pk, "name": name, "points_cost": cost} for pk, name, cost in cursor.fetchall()]
