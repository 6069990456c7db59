"""Sync health per CRM connection: what the admin shows and what an operator acts on."""
import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Min, Q
from django.utils import timezone

from crm_sync.models import CrmConnection, CrmDelivery
from wallet.models import DomainEvent


@dataclass(frozen=True)
class SyncHealth:
    delivered: int
    pending: int
    failing: int  # pending after at least one failed try
    dead: int
    lag: dt.timedelta | None  # age of the oldest event not yet delivered (None: nothing waiting)
    last_error: str
    last_success_at: dt.datetime | None


def health_of(connection: CrmConnection, *, now: dt.datetime | None = None) -> SyncHealth:
    now = now or timezone.now()
    Status = CrmDelivery.Status
    counts = CrmDelivery.objects.filter(connection=connection).aggregate(
        delivered=Count("pk", filter=Q(status=Status.DELIVERED)),
        pending=Count("pk", filter=Q(status=Status.PENDING)),
        failing=Count("pk", filter=Q(status=Status.PENDING, attempts__gt=0)),
        dead=Count("pk", filter=Q(status=Status.DEAD)),
        oldest_pending=Min("event__recorded_at", filter=Q(status=Status.PENDING)),
    )
    oldest = counts["oldest_pending"]
    unscanned = DomainEvent.objects.filter(
        merchant_id=connection.merchant_id, id__gt=connection.scanned_event_id
    ).exclude(pk__in=CrmDelivery.objects.filter(connection=connection).values("event_id"))
    if connection.event_types:
        unscanned = unscanned.filter(event_type__in=connection.event_types)
    oldest_unscanned = unscanned.aggregate(first=Min("recorded_at"))["first"]
    candidates = [t for t in (oldest, oldest_unscanned) if t is not None]
    return SyncHealth(
        delivered=counts["delivered"], pending=counts["pending"], failing=counts["failing"], dead=counts["dead"],
        lag=(now - min(candidates)) if candidates else None, last_error=connection.last_error,
        last_success_at=connection.last_success_at,
    )
