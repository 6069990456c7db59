"""Customer API: claim a purchase a POS reported without a card, with the code on the receipt."""
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api import StrictSerializer
from core.throttling import ScopedCounterThrottle
from wallet.api.cards import owned_card
from wallet.api.permissions import IsCustomer, current_customer
from wallet.api.serializers import (
    REPLAYED_HEADER,
    customer_scoped_key,
    idempotency_key_from,
    idempotency_parameter,
    replayed_parameter,
)
from wallet.services import claim_purchase


class ClaimRequestSerializer(StrictSerializer):
    receipt_code = serializers.CharField(max_length=64, help_text="The code printed on the receipt")
    amount = serializers.IntegerField(min_value=1, max_value=1_000_000_000,
                                      help_text="The receipt's total in minor units (cents)")


class ClaimResultSerializer(serializers.Serializer):
    purchase_id = serializers.IntegerField()
    points_earned = serializers.IntegerField()
    balance = serializers.IntegerField()


class CardClaimView(GenericAPIView):
    permission_classes = [IsCustomer]
    throttle_classes = [ScopedCounterThrottle]
    throttle_scope = "claim"
    pagination_class = None
    serializer_class = ClaimRequestSerializer

    @extend_schema(
        operation_id="cards_claim_purchase",
        summary="Claim a purchase with its receipt code",
        description="A sale the merchant's POS reported without knowing the customer is kept unmatched. "
        "With the receipt code and the exact total it is attached to this card and earns its points, once: "
        "a second claim of the same receipt is 409 `purchase_already_claimed`; no match is 404. At most "
        "10 claims an hour per customer (429 beyond).",
        tags=["cards"],
        request=ClaimRequestSerializer,
        parameters=[
            idempotency_parameter(required=True, description="A retry with it never claims twice."),
            replayed_parameter(201),
        ],
        responses={201: OpenApiResponse(ClaimResultSerializer, description="Points earned and the new balance")},
    )
    def post(self, request, pk):
        card = owned_card(request, pk)
        raw_key = idempotency_key_from(request, required=True)
        body = ClaimRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = claim_purchase(
            card, receipt_code=body.validated_data["receipt_code"], amount=body.validated_data["amount"],
            idempotency_key=customer_scoped_key(current_customer(request), raw_key),
        )
        response = Response(ClaimResultSerializer({
            "purchase_id": result.purchase_id, "points_earned": result.points_earned, "balance": result.balance,
        }).data, status=201)
        if result.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


urlpatterns = [path("cards/<int:pk>/claims/", CardClaimView.as_view(), name="wallet-card-claims")]
