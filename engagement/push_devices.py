"""The wallet app's push tokens: register, unregister, and switch off the ones a provider says are gone.

A token belongs to one phone, and a phone can change hands: registering a token another customer
registered moves it to the caller (the provider only knows the phone, and the old owner no longer
holds it). Tokens are never logged or returned by the API.
"""
import re

from django.db import IntegrityError, transaction

from core.errors import NotFound, ValidationFailed
from engagement.models import PushDevice
from wallet.models import Customer
from wallet.passes.apple.apns import PUSH_TOKEN_PATTERN

# FCM registration tokens are opaque, ~150-170 URL-safe characters today (`<instance id>:APA91b...`);
# the bounds leave room for change while refusing obvious garbage. APNs tokens are hexadecimal (32
# bytes today, documented as variable length), so they are kept in lower case: one phone, one row.
FCM_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_:\-]{64,512}$")
# Each active device costs a provider call per message; a customer who somehow collects more than
# this keeps the most recently registered ones.
MAX_ACTIVE_DEVICES_PER_CUSTOMER = 10


def normalized_token(platform: str, token: str) -> str:
    """The token as stored, or ValidationFailed naming the field."""
    token = (token or "").strip()
    if platform == PushDevice.Platform.APNS:
        if PUSH_TOKEN_PATTERN.match(token):
            return token.lower()
        message = "An APNs device token is 16 to 200 hexadecimal characters."
    elif platform == PushDevice.Platform.FCM:
        if FCM_TOKEN_PATTERN.match(token):
            return token
        message = "An FCM registration token is 64 to 512 letters, digits, '-', '_' or ':'."
    else:
        raise ValidationFailed(fields={"platform": [f"One of {', '.join(PushDevice.Platform.values)}."]})
    raise ValidationFailed(fields={"token": [message]})


def register_push_device(customer: Customer, platform: str, token: str) -> tuple[PushDevice, bool]:
    """Register (or refresh) the caller's phone. Returns the device and whether it is a new row;
    a token known already (the caller's, or another customer's) is moved to the caller and active again."""
    token = normalized_token(platform, token)
    with transaction.atomic():
        device = PushDevice.objects.select_for_update().filter(platform=platform, token=token).first()
        created = False
        if device is None:
            try:
                with transaction.atomic():  # a concurrent registration of the same token wins the insert
                    device = PushDevice.objects.create(customer=customer, platform=platform, token=token)
                created = True
            except IntegrityError:
                device = PushDevice.objects.select_for_update().get(platform=platform, token=token)
        if not created:
            device.customer, device.is_active = customer, True
            device.save(update_fields=["customer", "is_active", "last_registered_at"])
        _keep_newest_active(customer)
    return device, created


def _keep_newest_active(customer: Customer) -> None:
    stale = PushDevice.objects.filter(customer=customer, is_active=True).order_by("-last_registered_at", "-pk")
    stale_ids = list(stale.values_list("pk", flat=True)[MAX_ACTIVE_DEVICES_PER_CUSTOMER:])
    if stale_ids:
        PushDevice.objects.filter(pk__in=stale_ids).update(is_active=False)


def unregister_push_device(customer: Customer, token: str) -> None:
    """Forget the caller's phone (sign-out, notifications off). Another customer's token is NotFound:
    the answer must not confirm that someone else registered it."""
    token = (token or "").strip()
    candidates = {token, token.lower()} if PUSH_TOKEN_PATTERN.match(token) else {token}
    deleted, _ = PushDevice.objects.filter(customer=customer, token__in=candidates).delete()
    if not deleted:
        raise NotFound("No such push device is registered to you.")


def deactivate_push_device(device: PushDevice) -> bool:
    """Switch off a token the provider reported as gone, unless the phone re-registered it since the
    device row was read (then the phone says it works again, and the newer word wins)."""
    return bool(
        PushDevice.objects.filter(
            pk=device.pk, token=device.token, last_registered_at=device.last_registered_at, is_active=True
        ).update(is_active=False)
    )


def forget_customer(customer: Customer) -> int:
    """Erasure (wallet.hooks TESSERA_ERASURE_HOOKS): the customer's phones' push tokens are deleted.
    Returns how many."""
    deleted, _ = PushDevice.objects.filter(customer=customer).delete()
    return deleted
