"""Building what a connector sends from outbox rows: the event, plus the customer and card as they
are now, as this merchant may see them (read at send time, never stored in the outbox)."""
from crm_sync.types import CardSnapshot, CustomerProfile, OutboundEvent
from wallet.models import Card, CommunicationPreference, Customer, DomainEvent


def outbound_events(events: list[DomainEvent], merchant_id: int) -> list[OutboundEvent]:
    customer_ids = {e.customer_id for e in events if e.customer_id}
    card_ids = {e.card_id for e in events if e.card_id}
    customers = {c.pk: c for c in Customer.objects.filter(pk__in=customer_ids).select_related("user")}
    cards = {c.pk: c for c in Card.objects.filter(pk__in=card_ids, merchant_id=merchant_id)
             .select_related("tier", "program")}
    consents: dict[int, dict] = {}
    for customer_id, channel, opted_in in CommunicationPreference.objects.filter(
        customer_id__in=customer_ids, merchant_id=merchant_id
    ).values_list("customer_id", "channel", "is_opted_in"):
        consents.setdefault(customer_id, {})[channel] = opted_in
    return [
        OutboundEvent(
            event_id=e.pk, event_type=e.event_type, schema_version=e.schema_version, occurred_at=e.occurred_at,
            merchant_id=merchant_id, payload=e.payload,
            customer=_profile(customers.get(e.customer_id), consents.get(e.customer_id, {})),
            card=_card(cards.get(e.card_id)),
        )
        for e in events
    ]


def _profile(customer: Customer | None, consents: dict) -> CustomerProfile | None:
    if customer is None:
        return None
    if customer.erased_at is not None:
        return CustomerProfile(customer_id=customer.pk, erased=True)
    user = customer.user
    return CustomerProfile(
        customer_id=customer.pk, email=user.email or "", phone=user.phone or "", first_name=user.first_name,
        last_name=user.last_name, locale=customer.locale, time_zone=customer.time_zone, consents=dict(consents),
    )


def _card(card: Card | None) -> CardSnapshot | None:
    if card is None:
        return None
    return CardSnapshot(
        card_id=card.pk, number=card.number, program=card.program.name, balance=card.balance,
        lifetime_points=card.lifetime_points, tier=card.tier.name if card.tier else None, status=card.status,
    )
