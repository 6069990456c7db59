"""Communication preferences: per-merchant channel opt-ins, quiet hours and a global pause."""
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictSerializer
from merchants.models import Merchant
from wallet.api.permissions import IsCustomer, current_customer
from wallet.services.preferences import (
    CHANNELS,
    QuietHours,
    channel_consents,
    set_channel_consent,
    update_communication_settings,
)


@extend_schema_field({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "example": "21:30"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time "HH:MM" with no offset: it means that time wherever the customer is."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=["%H:%M"], **kwargs)


class ChannelsSerializer(StrictSerializer):
    push = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)
    sms = serializers.BooleanField(required=False)
    wallet_pass = serializers.BooleanField(required=False)


class MerchantBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MerchantPreferencesSerializer(serializers.Serializer):
    merchant = MerchantBriefSerializer()
    channels = ChannelsSerializer()


class CommunicationSettingsSerializer(StrictSerializer):
    communication_paused = serializers.BooleanField(required=False, help_text="Pause all: nobody may contact me")
    quiet_hours_start = LocalTimeField(
        required=False, allow_null=True, help_text="Local wall-clock time in my time zone, e.g. 21:30"
    )
    quiet_hours_end = LocalTimeField(required=False, allow_null=True, help_text="e.g. 07:00; may be before start")
    time_zone = serializers.CharField(read_only=True, help_text="Quiet hours are read in this zone (see me/)")

    def validate(self, attrs):
        has_start, has_end = "quiet_hours_start" in attrs, "quiet_hours_end" in attrs
        start, end = attrs.get("quiet_hours_start"), attrs.get("quiet_hours_end")
        one_cleared = has_start and has_end and (start is None) != (end is None)
        if has_start != has_end or one_cleared:
            raise serializers.ValidationError(
                {"quiet_hours_end": ["Give quiet_hours_start and quiet_hours_end together (both null clears them)."]}
            )
        return attrs


class PreferencesSerializer(CommunicationSettingsSerializer):
    merchants = MerchantPreferencesSerializer(many=True, read_only=True)


def _settings_body(customer, merchants=None) -> dict:
    body = {
        "communication_paused": customer.communication_paused,
        "quiet_hours_start": customer.quiet_hours_start.strftime("%H:%M") if customer.quiet_hours_start else None,
        "quiet_hours_end": customer.quiet_hours_end.strftime("%H:%M") if customer.quiet_hours_end else None,
        "time_zone": customer.time_zone,
    }
    if merchants is not None:
        body["merchants"] = [
            {"merchant": {"id": m.pk, "name": m.name}, "channels": channel_consents(customer, m)} for m in merchants
        ]
    return body


def _relevant_merchants(customer):
    """Merchants the customer has a card with, or has ever set a preference for."""
    return Merchant.objects.filter(
        Q(cards__wallet__customer=customer) | Q(pk__in=customer.preferences.values("merchant_id"))
    ).distinct().order_by("name", "pk")


class PreferencesView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        summary="My communication preferences",
        description="Global pause, quiet hours and, per merchant I hold a card with, which channels I opted in to. "
        "Every channel is off until I opt in.",
        responses=PreferencesSerializer,
        tags=["preferences"],
    )
    def get(self, request):
        customer = current_customer(request)
        return Response(_settings_body(customer, _relevant_merchants(customer)))

    @extend_schema(
        summary="Change the global pause or quiet hours",
        request=CommunicationSettingsSerializer,
        responses=CommunicationSettingsSerializer,
        tags=["preferences"],
    )
    def patch(self, request):
        customer = current_customer(request)
        serializer = CommunicationSettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        quiet_hours = False
        if "quiet_hours_start" in data:
            start, end = data["quiet_hours_start"], data["quiet_hours_end"]
            quiet_hours = QuietHours(start, end) if start is not None else None
        update_communication_settings(customer, paused=data.get("communication_paused"), quiet_hours=quiet_hours)
        return Response(_settings_body(customer))


class MerchantPreferencesView(APIView):
    permission_classes = [IsCustomer]

    def _merchant(self, merchant_id):
        return get_object_or_404(Merchant, pk=merchant_id, is_active=True)

    @extend_schema(summary="My channel opt-ins for one merchant", responses=MerchantPreferencesSerializer,
                   tags=["preferences"])
    def get(self, request, merchant_id: int):
        merchant = self._merchant(merchant_id)
        customer = current_customer(request)
        return Response({"merchant": {"id": merchant.pk, "name": merchant.name},
                         "channels": channel_consents(customer, merchant)})

    @extend_schema(
        summary="Opt in or out of a merchant's channels",
        description=f"Send any of {', '.join(CHANNELS)} as true or false; channels left out keep their setting.",
        request=ChannelsSerializer,
        responses=MerchantPreferencesSerializer,
        tags=["preferences"],
    )
    def patch(self, request, merchant_id: int):
        merchant = self._merchant(merchant_id)
        serializer = ChannelsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channels = set_channel_consent(current_customer(request), merchant, dict(serializer.validated_data))
        return Response({"merchant": {"id": merchant.pk, "name": merchant.name}, "channels": channels})


urlpatterns = [
    path("preferences/", PreferencesView.as_view(), name="preferences"),
    path("preferences/merchants/<int:merchant_id>/", MerchantPreferencesView.as_view(), name="merchant-preferences"),
]
