"""What engagement holds about a customer, for their privacy rights (plugged into wallet/hooks.py).

Access: every decision on a message to the customer (sent, skipped and why, failed) and the phones
registered for push. A push token reaches the phone, so the export shows only a short prefix to
recognise it by. Campaign names, provider ids and failure details are the merchant's and the
provider's working notes and stay out.

Erasure: push tokens go (engagement.push_devices.forget_customer). The send log rows stay, like the
ledger, because they are the merchant's campaign results and the frequency caps' memory; what could
name the person goes: a provider's failure text may quote the address or number, and the provider's
message id points to their copy of the message, which does.
"""
from engagement.models import PushDevice, SendLog
from wallet.models import Customer

TOKEN_PREFIX_CHARS = 6


def export_sections(customer: Customer) -> dict[str, list[dict]]:
    """The export's `messages` and `push_devices` sections (TESSERA_EXPORT_HOOKS)."""
    logs = (
        SendLog.objects.filter(customer=customer)
        .select_related("merchant", "message__offer")
        .order_by("decided_at", "pk")
    )
    devices = PushDevice.objects.filter(customer=customer).order_by("created_at", "pk")
    return {
        "messages": [
            {
                "id": log.pk,
                "merchant": {"id": log.merchant_id, "name": log.merchant.name},
                "kind": log.message.kind,
                "offer": log.message.offer.title,
                "channel": log.channel,
                "decision": log.decision,
                "reason": log.reason,
                "reason_text": log.get_reason_display(),
                "decided_at": log.decided_at.isoformat(),
                "local_time": log.local_time,
            }
            for log in logs
        ],
        "push_devices": [
            {
                "platform": device.platform,
                "token_prefix": device.token[:TOKEN_PREFIX_CHARS],
                "is_active": device.is_active,
                "created_at": device.created_at.isoformat(),
                "last_registered_at": device.last_registered_at.isoformat(),
            }
            for device in devices
        ],
    }


def forget_send_logs(customer: Customer) -> int:
    """Erasure (TESSERA_ERASURE_HOOKS): strip what could name the person from their send log rows."""
    return SendLog.objects.filter(customer=customer).update(detail="", provider_message_id="")
