"""The merchant's pass-token public keys, for devices that verify tokens offline."""
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pos_integration.api.authentication import DeviceKeyAuthentication, IsDevice
from wallet.passes.keys import active_key, public_keys


class PassKeysView(APIView):
    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]

    @extend_schema(
        summary="Public keys for offline token checks",
        description="The calling device's merchant's Ed25519 public keys (active and retired, base64url) and "
        "the token timing of each program, so the counter can verify a customer's rotating QR without the "
        "network. Refresh daily and after any error naming an unknown key.",
        responses=inline_serializer(
            "PassKeys",
            {
                "keys": serializers.ListField(child=serializers.DictField()),
                "programs": serializers.ListField(child=serializers.DictField()),
            },
        ),
        tags=["pos"],
    )
    def get(self, request):
        merchant = request.user.merchant
        active_key(merchant)  # a merchant whose customers never asked for a token yet still gets its key
        programs = merchant.programs.filter(is_active=True).values(
            "id", "token_period_seconds", "token_drift_steps"
        )
        return Response({"keys": public_keys(merchant), "programs": list(programs)})


urlpatterns = [path("pass-keys/", PassKeysView.as_view(), name="pos-pass-keys")]
