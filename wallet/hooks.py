"""Where apps above the core plug into it, named in settings so the core never imports them.

- TESSERA_EARNING_BONUS_HOOK: `hook(card, request, occurred_at, *, store) -> EarningBonus | None`, called
  inside the purchase's transaction with the card locked: the promotion (an engagement offer) that
  applies. `store` is the sale's Store, already read and checked to be the card merchant's (None for a
  sale with no store), so the hook need not read it again.
- TESSERA_ENROLMENT_HOOKS: `hook(card, occurred_at)` for each new card, inside the enrolment's
  transaction (a welcome offer's message is written with the card or not at all).
- TESSERA_PASS_OFFER_HOOK: `hook(card) -> str | None`, the offer line shown on the card's pass.
- TESSERA_ERASURE_HOOKS: `hook(customer)` inside the erasure's transaction: what other apps keep of a
  customer's personal data (push device tokens) goes with the rest.
- TESSERA_EXPORT_HOOKS: `hook(customer) -> dict` of further top-level sections of the customer's data
  export (what other apps hold about them: the messages sent to them, their push devices).
"""
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class EarningBonus:
    """A promotion on one purchase: the points are multiplied, then `bonus_points` added."""

    offer_id: int
    title: str
    multiplier: Decimal = Decimal(1)
    bonus_points: int = 0


def earning_bonus(card, request, occurred_at: dt.datetime, *, store) -> EarningBonus | None:
    path = getattr(settings, "TESSERA_EARNING_BONUS_HOOK", None)
    return import_string(path)(card, request, occurred_at, store=store) if path else None


def card_enrolled(card, occurred_at: dt.datetime) -> None:
    for path in getattr(settings, "TESSERA_ENROLMENT_HOOKS", []):
        import_string(path)(card, occurred_at)


def pass_offer_line(card) -> str | None:
    path = getattr(settings, "TESSERA_PASS_OFFER_HOOK", None)
    return import_string(path)(card) if path else None


def customer_erased(customer) -> None:
    for path in getattr(settings, "TESSERA_ERASURE_HOOKS", []):
        import_string(path)(customer)


def export_sections(customer) -> dict:
    sections: dict = {}
    for path in getattr(settings, "TESSERA_EXPORT_HOOKS", []):
        sections.update(import_string(path)(customer))
    return sections
