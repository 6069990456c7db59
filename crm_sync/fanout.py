"""Turning new outbox events into deliveries, per connection, without ever skipping one.

Each connection remembers the outbox id up to which it has looked (`scanned_event_id`). Ids are
handed out when a row is inserted, not when its transaction commits, so an event with a lower id
can become visible after a higher one. The scan therefore creates deliveries for everything new it
sees, but moves its mark only past events written more than SETTLE ago, whose transactions have
surely ended; the recent ones are looked at again next time (the unique (connection, event)
constraint makes that harmless).
"""
import datetime as dt

from django.db import transaction
from django.utils import timezone

from crm_sync.models import CrmConnection, CrmDelivery
from wallet.models import DomainEvent

SETTLE = dt.timedelta(seconds=60)
SCAN_LIMIT = 5000


def fan_out(connection_id, *, now: dt.datetime | None = None, max_pages: int = 20) -> int:
    """Create deliveries for the connection's new events. Returns how many were created.

    Reads the outbox in pages of SCAN_LIMIT past the settled mark, so a burst of recent events
    (younger than SETTLE, which the mark cannot pass yet) never hides the ones after it.
    """
    now = now or timezone.now()
    created = 0
    with transaction.atomic():
        connection = CrmConnection.objects.select_for_update().filter(pk=connection_id).first()
        if connection is None:
            return 0
        wanted = set(connection.event_types)
        settled, settling, cursor = connection.scanned_event_id, True, connection.scanned_event_id
        for _page in range(max_pages):
            rows = list(
                DomainEvent.objects.filter(merchant_id=connection.merchant_id, id__gt=cursor)
                .order_by("id").values_list("id", "event_type", "customer_id", "recorded_at")[:SCAN_LIMIT]
            )
            seen = set(CrmDelivery.objects.filter(
                connection=connection, event_id__in=[row[0] for row in rows]
            ).values_list("event_id", flat=True))
            new = [
                CrmDelivery(connection=connection, event_id=event_id, customer_id=customer_id, next_attempt_at=now)
                for event_id, event_type, customer_id, _ in rows
                if (not wanted or event_type in wanted) and event_id not in seen
            ]
            CrmDelivery.objects.bulk_create(new, ignore_conflicts=True)  # (the connection lock rules out races)
            created += len(new)
            for event_id, _, _, recorded_at in rows:
                if settling and recorded_at <= now - SETTLE:
                    settled = event_id
                else:
                    settling = False  # the mark stops at the first event that may not have settled
            if len(rows) < SCAN_LIMIT:
                break
            cursor = rows[-1][0]
        if settled != connection.scanned_event_id:
            CrmConnection.objects.filter(pk=connection.pk).update(scanned_event_id=settled)
    return created
