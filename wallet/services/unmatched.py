"""Sales no card matched, and the customer claiming one later with the code on their receipt.

A POS webhook for a customer who did not show a pass (or whom the POS could not identify) is
still kept, as a purchase with no card: nothing is lost, and reconciliation sees every sale. The
customer claims it once with the receipt code and the total; points are earned then, at the rate
their card has at claim time. Only a sale with nothing refunded can be claimed (a refund before
the claim would make the pro-rata reversal of a later refund ambiguous).
"""
import datetime as dt
from dataclasses import asdict, dataclass, field

from django.db.models import Q
from django.utils import timezone

from core.errors import NotFound
from merchants.billing.policy import earning_paused_reason
from merchants.models import Merchant
from wallet import rules
from wallet.errors import CardClosed, EarningPaused, InvalidRequest, PurchaseAlreadyClaimed
from wallet.events import emit_card_event
from wallet.idempotency import run_idempotent
from wallet.ledger import EntryDraft, append_entry, credit_expiry, lock_card
from wallet.models import Card, LedgerEntry, Purchase
from wallet.services.earning import PurchaseRequest, PurchaseResult
from wallet.services.validation import require_positive_amount, require_text

CLAIM_WINDOW_DAYS = 90


@dataclass(frozen=True)
class UnmatchedResult:
    purchase_id: int
    card_id: int | None
    replayed: bool = field(default=False, compare=False)


def record_unmatched_purchase(
    merchant: Merchant, request: PurchaseRequest, *, receipt_code: str, idempotency_key: str, source: str
) -> UnmatchedResult:
    """Keep a sale with no card. Idempotent on the key and, like every sale, on its external id."""
    require_text(request.external_id, "external_id", 128)
    require_positive_amount(request.amount)
    if request.currency != merchant.currency:
        raise InvalidRequest(f"This merchant takes {merchant.currency}.", fields={"currency": ["Currency mismatch."]})

    def work() -> dict:
        earlier = Purchase.objects.filter(merchant=merchant, external_id=request.external_id).first()
        if earlier is not None:
            return {"purchase_id": earlier.pk, "card_id": earlier.card_id}
        purchase = Purchase.objects.create(
            merchant=merchant, store_id=request.store_id, card=None, external_id=request.external_id,
            amount=request.amount, currency=request.currency, items=request.items,
            occurred_at=request.occurred_at or timezone.now(), receipt_code=(receipt_code or "")[:64],
        )
        return {"purchase_id": purchase.pk, "card_id": None}

    result, replayed = run_idempotent(
        merchant_id=merchant.pk, key=idempotency_key, operation="record_unmatched_purchase",
        request={"receipt_code": receipt_code, **asdict(request)}, work=work,
    )
    return UnmatchedResult(**result, replayed=replayed)


def claim_purchase(
    card: Card, *, receipt_code: str, amount: int, idempotency_key: str, now: dt.datetime | None = None
) -> PurchaseResult:
    """Attach an unmatched sale of the card's merchant to the card and earn its points, once.

    The receipt code and the exact total must both match: a short receipt number alone is guessable.
    """
    require_text(receipt_code, "receipt_code", 64)
    require_positive_amount(amount)
    now = now or timezone.now()
    code = receipt_code.strip().lstrip("#").strip()  # "#1042" and "1042" are the same receipt

    def work() -> dict:
        locked = lock_card(card.pk)
        if not locked.is_active:
            raise CardClosed()
        candidates = Purchase.objects.select_for_update().filter(
            Q(receipt_code__iexact=code) | Q(receipt_code__iexact=f"#{code}"),
            merchant_id=locked.merchant_id, amount=amount,
            occurred_at__gte=now - dt.timedelta(days=CLAIM_WINDOW_DAYS),
        )
        purchase = candidates.filter(card__isnull=True, refunded_amount=0).order_by("-occurred_at").first()
        if purchase is None:
            if candidates.filter(card__isnull=False).exists():
                raise PurchaseAlreadyClaimed()
            raise NotFound("No unclaimed purchase of this merchant matches this receipt code and total.")
        return _attach(locked, purchase, now, source="claim", reason="Claimed with the receipt code")

    result, replayed = run_idempotent(
        merchant_id=card.merchant_id, key=idempotency_key, operation="claim_purchase",
        request={"card_id": card.pk, "receipt_code": code.upper(), "amount": amount}, work=work,
    )
    return PurchaseResult(**result, replayed=replayed)


def attach_purchase(card: Card, purchase: Purchase, *, idempotency_key: str, source: str = "webhook",
                    now: dt.datetime | None = None) -> PurchaseResult | None:
    """A POS that first reported a sale without its customer now names a card: attach and earn,
    once. None when the sale is no longer unclaimed (already attached, or partly refunded)."""
    now = now or timezone.now()

    def work() -> dict:
        locked = lock_card(card.pk)
        if not locked.is_active:
            raise CardClosed()
        current = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if current.card_id is not None or current.refunded_amount or current.merchant_id != locked.merchant_id:
            return {}
        return _attach(locked, current, now, source=source, reason="Matched to the card after the sale")

    result, replayed = run_idempotent(
        merchant_id=card.merchant_id, key=idempotency_key, operation="attach_purchase",
        request={"card_id": card.pk, "purchase_id": purchase.pk}, work=work,
    )
    return PurchaseResult(**result, replayed=replayed) if result else None


def _attach(locked: Card, purchase: Purchase, now: dt.datetime, *, source: str, reason: str) -> dict:
    paused = earning_paused_reason(locked.merchant)
    if paused:
        raise EarningPaused(paused)
    multiplier = locked.tier.multiplier if locked.tier else 1
    program = locked.program
    points = rules.points_for_amount(
        purchase.amount, purchase.currency, program.points_per_currency_unit, multiplier, program.rounding
    )
    purchase.card, purchase.claimed_at, purchase.points_earned = locked, now, points
    purchase.save(update_fields=["card", "claimed_at", "points_earned"])
    entry = None
    if points > 0:
        entry = append_entry(
            locked,
            EntryDraft(
                kind=LedgerEntry.Kind.EARN, delta=points, lifetime_delta=points, occurred_at=now,
                expires_at=credit_expiry(locked, now), purchase_id=purchase.pk, store_id=purchase.store_id,
                multiplier=multiplier,
                source=source, reason=reason,
            ),
        )
    emit_card_event(
        locked, "wallet.purchase.recorded", occurred_at=now,
        payload={
            "purchase_id": purchase.pk, "external_id": purchase.external_id, "store_id": purchase.store_id,
            "amount": purchase.amount, "currency": purchase.currency, "points_earned": points, "claimed": True,
        },
    )
    return {
        "purchase_id": purchase.pk, "card_id": locked.pk, "entry_id": entry.pk if entry else None,
        "points_earned": points, "balance": locked.balance, "lifetime_points": locked.lifetime_points,
        "tier_id": locked.tier_id,
    }
