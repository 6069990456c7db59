"""Device authentication for the POS API: `Authorization: Device <key>`.

The device row is read on every request (so a revoked or rotated key is refused at once, whichever
process or server revoked it); its `last_used_at` is written at most once a minute per device, not on
every request: it says whether a till is still in use, and a write per scan cost a statement.
"""
import datetime as dt

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from pos_integration.models import PosDevice
from pos_integration.services import authenticate_device

SCHEME = "Device"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class DevicePrincipal:
    """What request.user is on the POS API: the device, never a person (cashiers come with PINs)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, device: PosDevice):
        self.device = device
        self.merchant = device.merchant


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme != SCHEME:
            return None
        device = authenticate_device(key.strip())
        if device is None:  # unknown, wrong or revoked: one answer for all
            raise exceptions.AuthenticationFailed("Invalid or revoked device key.")
        _note_use(device)
        return DevicePrincipal(device), device

    def authenticate_header(self, request):
        return SCHEME


def _note_use(device: PosDevice) -> None:
    now = timezone.now()
    if device.last_used_at is None or now - device.last_used_at >= LAST_USED_RESOLUTION:
        PosDevice.objects.filter(pk=device.pk).update(last_used_at=now)
        device.last_used_at = now


class IsDevice(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, DevicePrincipal)


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    target_class = DeviceKeyAuthentication
    name = "deviceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device <key>`: the key shown once when the device was registered.",
        }
