"""Recording a purchase and the points it earns."""
import datetime as dt
from dataclasses import asdict, dataclass, field

from django.db import IntegrityError
from django.utils import timezone

from core.joined_select import JoinedSelect
from merchants.billing.policy import earning_paused_reason
from merchants.models import Store
from wallet import rules
from wallet.errors import CardClosed, EarningPaused, InvalidRequest, PurchaseAlreadyRecorded
from wallet.events import emit_card_event
from wallet.hooks import earning_bonus
from wallet.idempotency import run_idempotent
from wallet.ledger import EntryDraft, append_entry, credit_expiry, lock_card
from wallet.models import Card, LedgerEntry, Purchase
from wallet.services.validation import require_no_nul, require_positive_amount, require_text

MAX_LINE_ITEMS = 500


@dataclass(frozen=True)
class PurchaseRequest:
    external_id: str
    amount: int
    currency: str
    store_id: int | None = None
    items: list = field(default_factory=list)
    occurred_at: dt.datetime | None = None


@dataclass(frozen=True)
class PurchaseResult:
    purchase_id: int
    card_id: int
    entry_id: int | None
    points_earned: int
    balance: int
    lifetime_points: int
    tier_id: int | None
    replayed: bool = field(default=False, compare=False)


# Read in every purchase's transaction; prepared once per process (see core.joined_select).
_STORE_OF_MERCHANT = JoinedSelect(Store, where="t0.id = %s AND t0.merchant_id = %s")
_PURCHASE_BY_EXTERNAL_ID = JoinedSelect(Purchase, where="t0.merchant_id = %s AND t0.external_id = %s")


def record_purchase(
    card: Card, request: PurchaseRequest, *, idempotency_key: str, source: str = "api", actor=None, store=None
) -> PurchaseResult:
    """Record a sale on `card` and earn points by the program's rate, rounding and tier multiplier.

    `store`: the request's store when the caller has already read it (a till's own store); it is used
    only if it is the request's store and the card's merchant's, else the store is read here.

    Idempotent twice over: on the key, and on the POS's external id (the same sale arriving by
    webhook and by a manual sync earns once).
    """
    _validate(request)
    occurred_at = request.occurred_at or timezone.now()

    def work() -> dict:
        locked = lock_card(card.pk)
        if not locked.is_active:
            raise CardClosed()
        if request.currency != locked.merchant.currency:
            raise InvalidRequest(
                f"This merchant takes {locked.merchant.currency}.", fields={"currency": ["Currency mismatch."]}
            )
        sold_at = None
        if request.store_id is not None:
            known = store is not None and store.pk == request.store_id and store.merchant_id == locked.merchant_id
            sold_at = store if known else _STORE_OF_MERCHANT.first(request.store_id, locked.merchant_id)
            if sold_at is None:
                raise InvalidRequest("Unknown store.", fields={"store_id": ["Not a store of this merchant."]})
        earlier = _PURCHASE_BY_EXTERNAL_ID.first(locked.merchant_id, request.external_id)
        if earlier is not None:
            return _result_of_earlier_purchase(locked, earlier, request)
        paused = earning_paused_reason(locked.merchant)
        if paused:
            raise EarningPaused(paused)
        return _earn(locked, request, occurred_at, source, actor, sold_at)

    try:
        result, replayed = run_idempotent(
            merchant_id=card.merchant_id,
            key=idempotency_key,
            operation="record_purchase",
            request={"card_id": card.pk, **asdict(request)},
            work=work,
        )
    except IntegrityError as error:
        if "purchase_external_id_unique" in str(error):
            raise PurchaseAlreadyRecorded() from error
        raise
    return PurchaseResult(**result, replayed=replayed)


def _validate(request: PurchaseRequest) -> None:
    require_text(request.external_id, "external_id", 128)
    require_positive_amount(request.amount)
    if not isinstance(request.items, list) or len(request.items) > MAX_LINE_ITEMS:
        raise InvalidRequest("items must be a list of at most 500 lines.", fields={"items": ["Invalid."]})
    require_no_nul(request.items, "items")


def _earn(card: Card, request: PurchaseRequest, occurred_at, source, actor, store) -> dict:
    program = card.program
    bonus = earning_bonus(card, request, occurred_at, store=store)
    multiplier = (card.tier.multiplier if card.tier else 1) * (bonus.multiplier if bonus else 1)
    points = rules.points_for_amount(
        request.amount, request.currency, program.points_per_currency_unit, multiplier, program.rounding
    ) + (bonus.bonus_points if bonus else 0)
    purchase = Purchase.objects.create(
        merchant_id=card.merchant_id,
        store_id=request.store_id,
        card=card,
        external_id=request.external_id,
        amount=request.amount,
        currency=request.currency,
        items=request.items,
        points_earned=points,
        occurred_at=occurred_at,
    )
    entry = None
    if points > 0:
        entry = append_entry(
            card,
            EntryDraft(
                kind=LedgerEntry.Kind.EARN,
                delta=points,
                lifetime_delta=points,
                occurred_at=occurred_at,
                expires_at=credit_expiry(card, occurred_at),
                purchase_id=purchase.pk,
                store_id=purchase.store_id,
                multiplier=multiplier,
                offer_id=bonus.offer_id if bonus else None,
                offer_title=bonus.title if bonus else "",
                source=source,
                actor_id=getattr(actor, "pk", None),
            ),
        )
    emit_card_event(
        card,
        "wallet.purchase.recorded",
        occurred_at=occurred_at,
        payload={
            "purchase_id": purchase.pk,
            "external_id": purchase.external_id,
            "store_id": purchase.store_id,
            "amount": purchase.amount,
            "currency": purchase.currency,
            "points_earned": points,
        },
    )
    return _result_dict(card, purchase, entry.pk if entry else None)


def _result_of_earlier_purchase(card: Card, earlier: Purchase, request: PurchaseRequest) -> dict:
    if earlier.card_id != card.pk or earlier.amount != request.amount or earlier.currency != request.currency:
        raise PurchaseAlreadyRecorded()
    entry = earlier.entries.filter(kind=LedgerEntry.Kind.EARN).first()
    return _result_dict(card, earlier, entry.pk if entry else None)


def _result_dict(card: Card, purchase: Purchase, entry_id: int | None) -> dict:
    return {
        "purchase_id": purchase.pk,
        "card_id": card.pk,
        "entry_id": entry_id,
        "points_earned": purchase.points_earned,
        "balance": card.balance,
        "lifetime_points": card.lifetime_points,
        "tier_id": card.tier_id,
    }
