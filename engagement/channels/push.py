"""The "push" channel: a notification on every phone where the customer signed in to the wallet app.

Android phones through FCM, iPhones through APNs alerts. A platform this site has not configured is
skipped; with neither configured the channel is unavailable. The message counts as sent when at least
one phone's provider accepted it; tokens the provider reports as gone are switched off on the spot.
The opt-out link travels in the data payload for the app to show, never in the visible text.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from engagement.channels import apns_alert, fcm
from engagement.channels.base import ChannelSender, ChannelUnavailable, OutgoingMessage, SendFailed, SendOutcome
from engagement.models import PushDevice
from engagement.push_devices import deactivate_push_device
from wallet.passes.apple.apns import DEAD_TOKEN_REASONS, PERMANENT, RETRYABLE, SENT, UNREGISTERED
from wallet.passes.google.credentials import CredentialsError

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class DeviceOutcome:
    outcome: str  # SENT, UNREGISTERED, RETRYABLE or PERMANENT (both providers' clients speak it)
    reason: str = ""
    message_id: str = ""


def message_data(message: OutgoingMessage) -> dict[str, str]:
    """What the app receives besides the visible text (FCM wants every value a string)."""
    data = {"merchant_id": str(message.merchant_id), "card_id": str(message.card_id),
            "opt_out_url": message.opt_out_url}
    if message.offer_id is not None:
        data["offer_id"] = str(message.offer_id)
    return data


def _send_fcm(device: PushDevice, message: OutgoingMessage, data: dict) -> DeviceOutcome:
    result = fcm.fcm_client().send(device.token, title=message.subject, body=message.body, data=data)
    return DeviceOutcome(result.outcome, result.reason, result.message_id)


def _send_apns(device: PushDevice, message: OutgoingMessage, data: dict) -> DeviceOutcome:
    result = apns_alert.send_alert(device.token, message, data)
    outcome = result.outcome
    if outcome == PERMANENT and result.reason in DEAD_TOKEN_REASONS:  # the app re-registers on start
        outcome = UNREGISTERED
    return DeviceOutcome(outcome, result.reason, result.apns_id)


def configured_senders() -> dict[str, Callable[[PushDevice, OutgoingMessage, dict], DeviceOutcome]]:
    senders = {}
    if fcm.fcm_configured():
        senders[PushDevice.Platform.FCM] = _send_fcm
    if apns_alert.apns_alerts_configured():
        senders[PushDevice.Platform.APNS] = _send_apns
    return senders


class PushChannel(ChannelSender):
    key = "push"

    def has_address(self, customer, card=None) -> bool:
        return PushDevice.objects.filter(customer=customer, is_active=True).exists()

    def send(self, message: OutgoingMessage, customer) -> SendOutcome:
        senders = configured_senders()
        if not senders:
            raise ChannelUnavailable("Neither FCM nor APNs alerts are configured.")
        devices = list(
            PushDevice.objects.filter(customer=customer, is_active=True, platform__in=list(senders)).order_by("pk")
        )
        if not devices:
            raise ChannelUnavailable("No push provider is configured for this customer's phones.")
        data = message_data(message)
        sent_ids, failures, all_permanent = [], [], True
        for device in devices:
            try:
                outcome = senders[device.platform](device, message, data)
            except (CredentialsError, ImproperlyConfigured, OSError) as error:  # an unreadable key or account file
                logger.error("push to %s is misconfigured: %s", device.platform, error)
                outcome = DeviceOutcome(PERMANENT, "configuration")
            if outcome.outcome == SENT:
                sent_ids.append(outcome.message_id)
                continue
            failures.append(f"{device.platform}: {outcome.reason or outcome.outcome}")
            if outcome.outcome == UNREGISTERED:
                deactivate_push_device(device)
            elif outcome.outcome == RETRYABLE:
                all_permanent = False
        if sent_ids:
            return SendOutcome(provider_message_id=",".join(filter(None, sent_ids))[:200])
        raise SendFailed(f"No phone accepted the push ({'; '.join(failures)})"[:300], permanent=all_permanent)
