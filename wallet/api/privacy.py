"""Customer API: privacy. Export everything held about me; erase my account.

Both need the customer's access token; erasure also needs the password and is throttled like logging in.
"""
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import ScopedCounterThrottle
from wallet.api.accounts import PasswordConfirmationSerializer, valid_input
from wallet.api.permissions import IsCustomer, current_customer
from wallet.services import accounts, privacy

PRIVACY_TAGS = ["privacy"]


class ExportEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    delta = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    reason = serializers.CharField(allow_blank=True)
    source = serializers.CharField()
    purchase_id = serializers.IntegerField(allow_null=True)
    redemption_id = serializers.IntegerField(allow_null=True)
    reverses_id = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    occurred_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class ExportPurchaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    store = serializers.CharField(allow_null=True)
    amount = serializers.IntegerField(help_text="Minor units")
    currency = serializers.CharField()
    items = serializers.JSONField()
    status = serializers.CharField()
    refunded_amount = serializers.IntegerField()
    points_earned = serializers.IntegerField()
    points_reversed = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()


class ExportRedemptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reward = serializers.CharField()
    points = serializers.IntegerField()
    coupon_code = serializers.CharField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)


class ExportNamedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ExportCardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    merchant = ExportNamedSerializer()
    program = ExportNamedSerializer()
    status = serializers.CharField()
    balance = serializers.IntegerField()
    lifetime_points = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    ledger_entries = ExportEntrySerializer(many=True)
    purchases = ExportPurchaseSerializer(many=True)
    redemptions = ExportRedemptionSerializer(many=True)


class ExportProfileSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    username = serializers.CharField()
    # Blank when never given (a phone-only or email-only account), and after erasure.
    email = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    time_zone = serializers.CharField()
    locale = serializers.CharField()
    home_latitude = serializers.CharField(allow_null=True, help_text="Decimal degrees as a string")
    home_longitude = serializers.CharField(allow_null=True)
    last_seen_latitude = serializers.CharField(allow_null=True, help_text="Where the app last sent from, for offers")
    last_seen_longitude = serializers.CharField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    birth_month = serializers.IntegerField(allow_null=True)
    birth_day = serializers.IntegerField(allow_null=True)
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExportPreferenceSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField()
    merchant_name = serializers.CharField()
    channel = serializers.CharField()
    is_opted_in = serializers.BooleanField()
    updated_at = serializers.DateTimeField()


class ExportConsentChangeSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField()
    merchant_name = serializers.CharField(allow_blank=True)
    channel = serializers.CharField()
    opted_in = serializers.BooleanField()
    source = serializers.CharField(allow_blank=True, help_text="Empty: my own choice; provider_opt_out: a STOP reply")
    occurred_at = serializers.DateTimeField()


class ExportCommunicationSerializer(serializers.Serializer):
    communication_paused = serializers.BooleanField()
    quiet_hours_start = serializers.CharField(allow_null=True, help_text="Local time, HH:MM:SS")
    quiet_hours_end = serializers.CharField(allow_null=True)
    preferences = ExportPreferenceSerializer(many=True)
    consent_history = ExportConsentChangeSerializer(many=True, help_text="Every change of consent, oldest first")


class ExportExternalCardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    barcode_value = serializers.CharField()
    barcode_format = serializers.CharField()
    color = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ExportMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    merchant = ExportNamedSerializer()
    kind = serializers.CharField(help_text="campaign or welcome")
    offer = serializers.CharField(help_text="The offer the message was about")
    channel = serializers.CharField()
    decision = serializers.CharField(help_text="sent, skipped or failed")
    reason = serializers.CharField()
    reason_text = serializers.CharField(help_text="Why, in words")
    decided_at = serializers.DateTimeField()
    local_time = serializers.CharField(allow_blank=True, help_text="My local time at the decision, with its zone")


class ExportPushDeviceSerializer(serializers.Serializer):
    platform = serializers.CharField()
    token_prefix = serializers.CharField(help_text="The token's first characters only, to recognise the phone by")
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_registered_at = serializers.DateTimeField()


class ExportSerializer(serializers.Serializer):
    """Everything Tessera holds about the customer (times in UTC, ISO 8601)."""

    format = serializers.CharField(help_text=f"Always {privacy.EXPORT_FORMAT}")
    version = serializers.IntegerField()
    exported_at = serializers.DateTimeField()
    profile = ExportProfileSerializer()
    communication = ExportCommunicationSerializer()
    cards = ExportCardSerializer(many=True)
    external_cards = ExportExternalCardSerializer(many=True)
    # Sections added by apps above the core (wallet.hooks.export_sections); absent if the app is not installed.
    messages = ExportMessageSerializer(
        many=True, required=False, help_text="Every decision on a message to me: sent, skipped and why, or failed"
    )
    push_devices = ExportPushDeviceSerializer(many=True, required=False)


class ExportView(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(
        operation_id="me_export",
        summary="Download my data",
        description="Everything Tessera holds about me as one JSON document, served as a file download: "
        "profile, cards with balances, every ledger entry, purchases, redemptions and their coupon codes, "
        "third-party cards, communication preferences, settings and consent history, every message "
        "sent to me or decided about me (skipped and why), and my registered phones.",
        tags=PRIVACY_TAGS,
        responses={200: ExportSerializer},
    )
    def get(self, request):
        data = privacy.export_customer_data(current_customer(request))
        response = Response(data)
        filename = f"tessera-export-{data['profile']['customer_id']}-{data['exported_at'][:10]}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response


class EraseView(APIView):
    permission_classes = [IsCustomer]
    throttle_classes = [ScopedCounterThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="me_erase",
        summary="Erase my account",
        description="Confirm with the password. Deletes my name, email, phone, home location, third-party "
        "cards, communication preferences, push devices and the provider details of messages sent to me, "
        "closes my cards and ends every session; this cannot be "
        "undone. Cards, points history, purchases and redemptions stay, no longer linked to me, because "
        "merchants must keep them for their accounts. A wrong password is a 400 and changes nothing.",
        tags=PRIVACY_TAGS,
        request=PasswordConfirmationSerializer,
        responses={204: OpenApiResponse(description="Erased; the access token no longer works")},
    )
    def post(self, request):
        data = valid_input(PasswordConfirmationSerializer, request)
        accounts.verify_password(request.user, data["password"])
        privacy.erase_customer(current_customer(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("me/export/", ExportView.as_view(), name="me-export"),
    path("me/erase/", EraseView.as_view(), name="me-erase"),
]
