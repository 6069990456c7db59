"""Tell every device that holds a card's pass to fetch it again (Apple's empty-payload push).

`push_card_update(card_id)` is meant to run from a Celery task after the card's pass changed; it
returns a summary, and `summary.needs_retry` tells the task to retry later (pushes coalesce, so
pushing a device twice is harmless). A 410 from APNs, or a 400 whose reason says the token is dead
(`DEAD_TOKEN_REASONS`: BadDeviceToken), removes that registration, so the device is not pushed again
until Wallet registers it anew. DeviceTokenNotForTopic keeps it: our pass type id is wrong, not the device.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from wallet.models import AppleDevice, AppleRegistration

from .apns import DEAD_TOKEN_REASONS, PERMANENT, RETRYABLE, SENT, UNREGISTERED, ApnsClient

logger = logging.getLogger(__name__)


@dataclass
class PushSummary:
    sent: int = 0
    removed: int = 0
    retryable: list[str] = field(default_factory=list)  # device library identifiers
    failed: list[str] = field(default_factory=list)

    @property
    def needs_retry(self) -> bool:
        return bool(self.retryable)


def push_card_update(card_id: int, *, client: ApnsClient | None = None) -> PushSummary:
    registrations = list(
        AppleRegistration.objects.filter(card_id=card_id).select_related("device").order_by("pk")
    )
    summary = PushSummary()
    if not registrations:
        return summary
    own_client = client is None
    client = client or ApnsClient.from_settings()
    try:
        for registration in registrations:
            device = registration.device
            result = client.push_pass_update(device.push_token, registration.pass_type_identifier)
            if result.outcome == SENT:
                summary.sent += 1
            elif result.outcome == UNREGISTERED or (
                result.outcome == PERMANENT and result.reason in DEAD_TOKEN_REASONS
            ):
                summary.removed += _remove(registration, device.push_token)
            elif result.outcome == RETRYABLE:
                summary.retryable.append(device.device_library_identifier)
            elif result.outcome == PERMANENT:
                summary.failed.append(device.device_library_identifier)
                logger.warning(
                    "pass push to device %s failed permanently: %s %s",
                    device.device_library_identifier, result.status, result.reason,
                )
    finally:
        if own_client:
            client.close()
    return summary


def _remove(registration: AppleRegistration, pushed_token: str) -> int:
    """Drop the registration, unless the device re-registered with a new push token meanwhile."""
    with transaction.atomic():
        device = AppleDevice.objects.select_for_update().filter(pk=registration.device_id).first()
        if device is None or device.push_token != pushed_token:
            return 0
        deleted, _ = AppleRegistration.objects.filter(pk=registration.pk).delete()
        if not device.registrations.exists():
            device.delete()
    return 1 if deleted else 0
