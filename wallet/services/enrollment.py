"""Joining a merchant's program: one card per wallet and program, welcome bonus once."""
import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from merchants.models import Program
from wallet import rules
from wallet.errors import InvalidRequest
from wallet.events import emit_card_event
from wallet.hooks import card_enrolled
from wallet.ledger import EntryDraft, append_entry, credit_expiry, lock_card
from wallet.models import Card, Customer, LedgerEntry
from wallet.passes.notify import schedule_pass_update


@dataclass(frozen=True)
class EnrollmentResult:
    card: Card
    created: bool


def enroll(customer: Customer, program: Program, *, occurred_at: dt.datetime | None = None) -> EnrollmentResult:
    """Give the customer a card in `program`. Enrolling again returns the existing card (a card
    closed by leaving the program is reopened, with its history and without a second welcome bonus).

    The unique (wallet, program) constraint is the idempotency key: two concurrent enrolments race
    on it, one creates the card and pays the welcome bonus, the other gets that same card back.
    """
    if not program.is_active:
        raise InvalidRequest("This program is not accepting members.")
    occurred_at = occurred_at or timezone.now()
    wallet = customer.wallet
    existing = Card.objects.filter(wallet=wallet, program=program).first()
    if existing is not None:
        if not existing.is_active:
            existing = _reopen(existing, occurred_at)
        return EnrollmentResult(card=existing, created=False)
    try:
        with transaction.atomic():
            card = lock_card(_create_card(wallet, program).pk)
            emit_card_event(
                card,
                "wallet.card.enrolled",
                occurred_at=occurred_at,
                payload={"program_id": program.pk, "customer_id": customer.pk},
            )
            if program.welcome_bonus:
                append_entry(
                    card,
                    EntryDraft(
                        kind=LedgerEntry.Kind.WELCOME,
                        delta=program.welcome_bonus,
                        lifetime_delta=program.welcome_bonus,
                        occurred_at=occurred_at,
                        expires_at=credit_expiry(card, occurred_at),
                    ),
                )
            card_enrolled(card, occurred_at)
    except IntegrityError:
        existing = Card.objects.filter(wallet=wallet, program=program).first()
        if existing is None:
            raise
        return EnrollmentResult(card=existing, created=False)
    return EnrollmentResult(card=card, created=True)


def leave_program(card: Card, *, occurred_at: dt.datetime | None = None) -> Card:
    """Close the card: no more earning or redeeming. Its history and balance stay on the ledger."""
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        locked = lock_card(card.pk)
        if locked.is_active:
            locked.status, locked.closed_at, locked.pass_updated_at = Card.Status.CLOSED, occurred_at, timezone.now()
            locked.save(update_fields=["status", "closed_at", "pass_updated_at"])
            schedule_pass_update(locked.pk)
            emit_card_event(locked, "wallet.card.closed", occurred_at=occurred_at, payload={"balance": locked.balance})
    return locked


def _reopen(card: Card, occurred_at: dt.datetime) -> Card:
    with transaction.atomic():
        locked = lock_card(card.pk)
        if not locked.is_active:
            locked.status, locked.closed_at, locked.pass_updated_at = Card.Status.ACTIVE, None, timezone.now()
            locked.save(update_fields=["status", "closed_at", "pass_updated_at"])
            emit_card_event(locked, "wallet.card.reopened", occurred_at=occurred_at, payload={})
    return locked


def _create_card(wallet, program) -> Card:
    """Insert the card with a fresh random number; a number collision (rare) draws again."""
    for _attempt in range(5):
        number = rules.new_card_number()
        if Card.objects.filter(number=number).exists():
            continue
        # A tier that starts at 0 points is the member's tier from day one, before any purchase.
        starting_tier = rules.tier_for(0, list(program.tiers.order_by("threshold")))
        return Card.objects.create(
            wallet=wallet, program=program, merchant_id=program.merchant_id, number=number, tier=starting_tier
        )
    raise RuntimeError("Could not draw an unused card number.")
