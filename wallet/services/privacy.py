"""A customer's privacy rights: a copy of everything we hold about them, and erasure.

Erasure removes what identifies the person and keeps what merchants must keep for accounting:
cards (closed), ledger entries, purchases and redemptions stay, attached to a customer row that no
longer names anyone. The outbox never held personal data (see wallet.events), so it needs no
rewrite; each merchant the customer had a card with hears `wallet.customer.erased` so its CRM
connector can erase the contact on its side too. Every channel the customer had opted into is
withdrawn first, through the consent service, so consumers of `wallet.consent.changed` stop as well.

The export adds what apps above the core hold (wallet.hooks.export_sections: engagement's messages
and push devices) as further sections, without the core knowing them.
"""
import datetime as dt
import secrets
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from merchants.models import Merchant
from wallet.events import emit_event
from wallet.hooks import customer_erased, export_sections
from wallet.models import (
    Card,
    CommunicationPreference,
    Customer,
    DomainEvent,
    ExternalCard,
    Purchase,
    Redemption,
)
from wallet.services.accounts import revoke_refresh_tokens
from wallet.services.enrollment import leave_program
from wallet.services.preferences import withdraw_consent_everywhere

EXPORT_FORMAT = "tessera.customer-export"
EXPORT_VERSION = 1


@dataclass(frozen=True)
class ErasureResult:
    customer_id: int
    cards_closed: int
    merchants_notified: tuple[int, ...]
    already_erased: bool = False


def erase_customer(customer: Customer, *, occurred_at: dt.datetime | None = None) -> ErasureResult:
    """Erase the customer's personal data in one transaction. Erasing twice changes nothing more."""
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        # Lock order: customer (and its user), then each card in primary-key order (leave_program).
        locked = Customer.objects.select_for_update(of=("self",)).select_related("user", "wallet").get(pk=customer.pk)
        if locked.erased_at is not None:
            return ErasureResult(locked.pk, 0, (), already_erased=True)
        cards = list(Card.objects.filter(wallet__customer=locked).order_by("pk"))
        closed = 0
        for card in cards:
            if card.is_active:
                leave_program(card, occurred_at=occurred_at)
                closed += 1
        ExternalCard.objects.filter(wallet__customer=locked).delete()
        # Opted out of every channel through the consent service, so a consumer that follows
        # `wallet.consent.changed` stops contacting the customer even before it handles the erasure.
        withdraw_consent_everywhere(locked)
        CommunicationPreference.objects.filter(customer=locked).delete()

        user = locked.user
        user.username = f"erased-{locked.pk}-{secrets.token_hex(6)}"
        user.email = user.phone = user.first_name = user.last_name = ""
        user.set_unusable_password()
        user.is_active = False
        user.save(update_fields=["username", "email", "phone", "first_name", "last_name", "password", "is_active"])

        locked.home_latitude = locked.home_longitude = None
        locked.last_seen_latitude = locked.last_seen_longitude = locked.last_seen_at = None
        locked.birth_month = locked.birth_day = None
        locked.quiet_hours_start = locked.quiet_hours_end = None
        locked.communication_paused = True  # belt and braces: no campaign may pick this row up again
        locked.erased_at = occurred_at
        locked.save(
            update_fields=[
                "home_latitude", "home_longitude", "last_seen_latitude", "last_seen_longitude", "last_seen_at",
                "birth_month", "birth_day", "quiet_hours_start", "quiet_hours_end", "communication_paused",
                "erased_at",
            ]
        )
        revoke_refresh_tokens(user)
        customer_erased(locked)

        merchant_ids = tuple(sorted({card.merchant_id for card in cards}))
        for merchant_id in merchant_ids:
            emit_event(
                "wallet.customer.erased",
                merchant_id=merchant_id,
                customer_id=locked.pk,
                payload={"customer_id": locked.pk},
                occurred_at=occurred_at,
            )
    return ErasureResult(locked.pk, closed, merchant_ids)


def export_customer_data(customer: Customer) -> dict:
    """Everything Tessera holds about the customer, as JSON-ready values (right of access)."""
    customer = Customer.objects.select_related("user", "wallet").get(pk=customer.pk)
    user = customer.user
    cards = (
        Card.objects.filter(wallet__customer=customer)
        .select_related("merchant", "program", "tier")
        .prefetch_related("entries")
        .order_by("pk")
    )
    purchases = _by_card(Purchase.objects.filter(card__wallet__customer=customer).select_related("store"))
    redemptions = _by_card(Redemption.objects.filter(card__wallet__customer=customer).select_related("reward"))
    data = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": _time(timezone.now()),
        "profile": {
            "customer_id": customer.pk,
            "username": user.username,
            "email": user.email,
            "phone": user.phone,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "time_zone": customer.time_zone,
            "locale": customer.locale,
            "home_latitude": _text(customer.home_latitude),
            "home_longitude": _text(customer.home_longitude),
            "last_seen_latitude": _text(customer.last_seen_latitude),
            "last_seen_longitude": _text(customer.last_seen_longitude),
            "last_seen_at": _time(customer.last_seen_at),
            "birth_month": customer.birth_month,
            "birth_day": customer.birth_day,
            "date_joined": _time(user.date_joined),
            "last_login": _time(user.last_login),
            "created_at": _time(customer.created_at),
        },
        "communication": {
            "communication_paused": customer.communication_paused,
            "quiet_hours_start": _text(customer.quiet_hours_start),
            "quiet_hours_end": _text(customer.quiet_hours_end),
            "preferences": [
                {
                    "merchant_id": preference.merchant_id,
                    "merchant_name": preference.merchant.name,
                    "channel": preference.channel,
                    "is_opted_in": preference.is_opted_in,
                    "updated_at": _time(preference.updated_at),
                }
                for preference in customer.preferences.select_related("merchant").order_by("merchant_id", "channel")
            ],
            "consent_history": _consent_history(customer),
        },
        "cards": [_card(card, purchases.get(card.pk, []), redemptions.get(card.pk, [])) for card in cards],
        "external_cards": [
            {
                "id": external.pk,
                "name": external.name,
                "barcode_value": external.barcode_value,
                "barcode_format": external.barcode_format,
                "color": external.color,
                "note": external.note,
                "created_at": _time(external.created_at),
            }
            for external in ExternalCard.objects.filter(wallet=customer.wallet).order_by("pk")
        ],
    }
    for name, section in export_sections(customer).items():
        if name in data:  # a plug-in must add to the export, never replace what the core states
            raise ImproperlyConfigured(f"An export hook returned the core's section {name!r}.")
        data[name] = section
    return data


def _consent_history(customer: Customer) -> list[dict]:
    """Every change of consent, from the outbox: the preferences show only where it stands now."""
    events = list(
        DomainEvent.objects.filter(event_type="wallet.consent.changed", customer_id=customer.pk).order_by("pk")
    )
    names = dict(Merchant.objects.filter(pk__in={event.merchant_id for event in events}).values_list("pk", "name"))
    return [
        {
            "merchant_id": event.merchant_id,
            "merchant_name": names.get(event.merchant_id, ""),
            "channel": event.payload.get("channel", ""),
            "opted_in": bool(event.payload.get("opted_in")),
            "source": event.payload.get("source", ""),
            "occurred_at": _time(event.occurred_at),
        }
        for event in events
    ]


def _card(card: Card, purchases: list, redemptions: list) -> dict:
    return {
        "id": card.pk,
        "number": card.number,
        "merchant": {"id": card.merchant_id, "name": card.merchant.name},
        "program": {"id": card.program_id, "name": card.program.name},
        "status": card.status,
        "balance": card.balance,
        "lifetime_points": card.lifetime_points,
        "tier": card.tier.name if card.tier else None,
        "created_at": _time(card.created_at),
        "closed_at": _time(card.closed_at),
        "ledger_entries": [
            {
                "id": entry.pk,
                "kind": entry.kind,
                "delta": entry.delta,
                "balance_after": entry.balance_after,
                "reason": entry.reason,
                "source": entry.source,
                "purchase_id": entry.purchase_id,
                "redemption_id": entry.redemption_id,
                "reverses_id": entry.reverses_id,
                "expires_at": _time(entry.expires_at),
                "occurred_at": _time(entry.occurred_at),
                "created_at": _time(entry.created_at),
            }
            for entry in sorted(card.entries.all(), key=lambda entry: entry.pk)
        ],
        "purchases": [
            {
                "id": purchase.pk,
                "external_id": purchase.external_id,
                "store": purchase.store.name if purchase.store else None,
                "amount": purchase.amount,
                "currency": purchase.currency,
                "items": purchase.items,
                "status": purchase.status,
                "refunded_amount": purchase.refunded_amount,
                "points_earned": purchase.points_earned,
                "points_reversed": purchase.points_reversed,
                "occurred_at": _time(purchase.occurred_at),
            }
            for purchase in purchases
        ],
        "redemptions": [
            {
                "id": redemption.pk,
                "reward": redemption.reward.name,
                "points": redemption.points,
                "coupon_code": redemption.coupon_code,
                "status": redemption.status,
                "expires_at": _time(redemption.expires_at),
                "created_at": _time(redemption.created_at),
                "used_at": _time(redemption.used_at),
                "cancelled_at": _time(redemption.cancelled_at),
            }
            for redemption in redemptions
        ],
    }


def _by_card(queryset) -> dict[int, list]:
    grouped: dict[int, list] = {}
    for row in queryset.order_by("pk"):
        grouped.setdefault(row.card_id, []).append(row)
    return grouped


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


def _text(value) -> str | None:
    return str(value) if value is not None else None
