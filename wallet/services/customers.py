"""Creating a customer, always together with the one wallet they own."""
from django.db import transaction
from django.utils import timezone

from wallet.events import emit_event
from wallet.models import Customer, Wallet


def create_customer(user, *, time_zone: str = "UTC", locale: str = "en") -> Customer:
    with transaction.atomic():
        customer = Customer(user=user, time_zone=time_zone, locale=locale)
        customer.full_clean(exclude=["user"])
        customer.save()
        Wallet.objects.create(customer=customer)
        emit_event(
            "wallet.customer.created",
            merchant_id=None,
            customer_id=customer.pk,
            payload={"customer_id": customer.pk, "time_zone": time_zone, "locale": locale},
            occurred_at=timezone.now(),
        )
    return customer
