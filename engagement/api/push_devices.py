"""Customer API: the wallet app registers the phone's push token, and forgets it on sign-out.

The token is an address, so it is never echoed back; the app already holds it. Deleting looks only
among the caller's own devices: another customer's token is a 404, like a token nobody registered.
"""
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, StrictSerializer
from engagement.models import PushDevice
from engagement.push_devices import register_push_device, unregister_push_device
from wallet.api.permissions import IsCustomer, current_customer

TAGS = ["push devices"]


class PushDeviceRegistrationSerializer(StrictSerializer):
    platform = serializers.ChoiceField(choices=PushDevice.Platform.choices,
                                       help_text="apns for iPhones, fcm for Android phones")
    token = serializers.CharField(
        max_length=512,
        help_text="The APNs device token (hexadecimal) or the FCM registration token the phone received",
    )


class PushDeviceSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=PushDevice.Platform.choices)
    is_active = serializers.BooleanField(help_text="False once the provider said the token is gone")
    registered_at = serializers.DateTimeField(source="last_registered_at")


class PushDeviceListView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="push_devices_register", tags=TAGS, summary="Register this phone for push notifications",
        description="Call after sign-in and whenever the platform hands the app a new token. Answers 201 for "
        "a token new to Tessera and 200 for one already registered (refreshed; a token registered by another "
        "account moves to yours, since a phone can change hands). Merchants still need your per-merchant "
        "opt-in for the push channel (see preferences).",
        request=PushDeviceRegistrationSerializer,
        responses={201: PushDeviceSerializer, 200: PushDeviceSerializer},
    )
    def post(self, request):
        serializer = PushDeviceRegistrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, created = register_push_device(
            current_customer(request), serializer.validated_data["platform"], serializer.validated_data["token"]
        )
        return Response(PushDeviceSerializer(device).data, status=status.HTTP_201_CREATED if created else 200)


class PushDeviceDetailView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="push_devices_unregister", tags=TAGS, summary="Stop push notifications to this phone",
        parameters=[OpenApiParameter("token", str, location="path", description="The token registered earlier")],
        responses={204: None, 404: OpenApiResponse(ErrorSerializer, description="Not a token of yours")},
    )
    def delete(self, request, token: str):
        unregister_push_device(current_customer(request), token)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("push-devices/", PushDeviceListView.as_view(), name="push-devices"),
    path("push-devices/<str:token>/", PushDeviceDetailView.as_view(), name="push-device"),
]
