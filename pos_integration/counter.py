"""What a counter does with a scanned code: find the card (and coupon) it stands for, for this merchant.

A code is one of three things, told apart by shape: a static card number (digits with a Luhn
check digit, printed as Code 128), a coupon code (from a redemption), or a rotating pass token
(signed, from the QR). Anything of another merchant is simply not found, so a device learns
nothing about other merchants' customers.
"""
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from core.errors import NotFound, ValidationFailed
from core.joined_select import JoinedSelect
from merchants.models import Reward
from pos_integration.models import PosDevice
from wallet import rules
from wallet.models import Card, Customer, Redemption, Wallet
from wallet.passes import tokens

User = get_user_model()


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


# What a card summary shows (tier, program, the customer's first name, the rewards it can take), read
# with the card in one prepared statement; a write that locks and re-reads the card anyway (a purchase)
# reads the bare card (with its program, which a token's time window needs). The first name comes as
# one column: loading the wallet, customer and user rows only for it cost more than the rest.
_SUMMARY = ("tier", "program")
_BY_NUMBER = "t0.number = %s AND t0.merchant_id = %s"
_SHOWN = {"redeemable_json": lambda connection: _redeemable_sql(connection),
          "first_name": lambda connection: _first_name_sql(connection)}
_CARD_BY_NUMBER = {True: JoinedSelect(Card, _SUMMARY, where=_BY_NUMBER, extra=_SHOWN),
                   False: JoinedSelect(Card, where=_BY_NUMBER)}
_CARD_BY_ID = {True: JoinedSelect(Card, _SUMMARY, where="t0.id = %s", extra=_SHOWN),
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
    first, as the scan shows them: read with the card by `identify` (summary=True)."""
    rows = card.redeemable_json
    if isinstance(rows, str):  # SQLite's JSON is text
        rows = json.loads(rows)
    return [{"id": pk, "name": name, "points_cost": cost} for pk, name, cost in rows]


def _first_name_sql(connection) -> str:
    """The first name of the customer holding the card t0 (the only personal detail a cashier sees)."""
    quote = connection.ops.quote_name
    user, customer, wallet = (quote(model._meta.db_table) for model in (User, Customer, Wallet))
    return (f"SELECT u.first_name FROM {wallet} w JOIN {customer} c ON c.id = w.customer_id "  # noqa: S608
            f"JOIN {user} u ON u.id = c.user_id WHERE w.id = t0.wallet_id")


def _redeemable_sql(connection) -> str:
    """A JSON array of [id, name, points_cost] of the rewards the card t0 can take now, cheapest first:
    the scan's second query folded into the card's statement."""
    table = connection.ops.quote_name(Reward._meta.db_table)
    postgres = connection.vendor == "postgresql"
    where = (f"r.program_id = t0.program_id AND r.is_active AND r.points_cost <= {'GREATEST' if postgres else 'MAX'}"
             "(t0.balance, 0) AND (r.stock IS NULL OR r.stock <> 0)")
    if postgres:
        return (f"SELECT COALESCE(json_agg(json_build_array(r.id, r.name, r.points_cost) "  # noqa: S608
                f"ORDER BY r.points_cost, r.id), '[]') FROM {table} r WHERE {where}")
    return (f"SELECT json_group_array(json_array(id, name, points_cost)) FROM "  # noqa: S608
            f"(SELECT r.id, r.name, r.points_cost FROM {table} r WHERE {where} ORDER BY r.points_cost, r.id)")
