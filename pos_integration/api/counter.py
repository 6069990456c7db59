"""The counter: scan a code to see the card, record a purchase that earns points."""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.api import StrictSerializer
from pos_integration.api.base import TAGS, CounterView, write_parameters
from pos_integration.counter import Identified, identify, redeemable_rewards
from pos_integration.counter_actions import earn
from wallet.api.serializers import idempotency_key_from
from wallet.services import PurchaseRequest


class ScanRequestSerializer(StrictSerializer):
    code = serializers.CharField(max_length=200, help_text="Card number, coupon code or the pass QR's token")


class PurchaseRequestSerializer(StrictSerializer):
    code = serializers.CharField(max_length=200, help_text="Card number or the pass QR's token")
    external_id = serializers.CharField(max_length=128, help_text="This POS's id for the sale")
    amount = serializers.IntegerField(min_value=1, max_value=1_000_000_000, help_text="Minor units (cents)")
    currency = serializers.RegexField(r"^[A-Z]{3}$", help_text="ISO 4217, the merchant's currency")
    items = serializers.ListField(child=serializers.DictField(), required=False, max_length=500)


class RewardBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    points_cost = serializers.IntegerField()


class CardSummarySerializer(serializers.Serializer):
    """Only what a cashier needs: no surname, email or phone."""

    number = serializers.CharField()
    first_name = serializers.CharField()
    status = serializers.CharField()
    tier = serializers.CharField(allow_null=True)
    balance = serializers.IntegerField()
    rewards_redeemable = RewardBriefSerializer(many=True)


class CouponSummarySerializer(serializers.Serializer):
    code = serializers.CharField()
    reward = serializers.CharField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ScanResponseSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["card_number", "coupon", "token"])
    card = CardSummarySerializer()
    coupon = CouponSummarySerializer(allow_null=True)


class PurchaseResponseSerializer(serializers.Serializer):
    purchase_id = serializers.IntegerField()
    points_earned = serializers.IntegerField()
    balance = serializers.IntegerField()


_DATETIME = serializers.DateTimeField()


def _summary(identified: Identified) -> dict:
    """The scan's answer, built as ScanResponseSerializer would render it (the schema still names the
    serializer) but without walking it: every value is already the JSON type the schema says."""
    card = identified.card
    coupon = identified.coupon
    return {
        "method": identified.method,
        "card": {
            "number": card.number,
            "first_name": card.first_name,
            "status": card.status,
            "tier": card.tier.name if card.tier else None,
            "balance": card.balance,
            "rewards_redeemable": redeemable_rewards(card),
        },
        "coupon": None if coupon is None else {
            "code": coupon.coupon_code, "reward": coupon.reward.name, "status": coupon.status,
            "expires_at": _DATETIME.to_representation(coupon.expires_at),
        },
    }


class ScanView(CounterView):
    @extend_schema(summary="Scan a card, coupon or pass", request=ScanRequestSerializer,
                   responses=ScanResponseSerializer, tags=TAGS)
    def post(self, request):
        identified = identify(self.device(request), self.body(ScanRequestSerializer, request)["code"])
        return Response(_summary(identified))


class PurchaseView(CounterView):
    @extend_schema(summary="Record a purchase; it earns points", request=PurchaseRequestSerializer,
                   responses={201: PurchaseResponseSerializer}, tags=TAGS,
                   parameters=write_parameters(
                       cashier_required=False,
                       description="Unique per sale on this device: a retry with the same key and body "
                       "returns the first answer and earns nothing more.",
                   ))
    def post(self, request):
        device = self.device(request)
        key = idempotency_key_from(request, required=True)
        data = self.body(PurchaseRequestSerializer, request)
        cashier = self.cashier(request, required=False)
        identified = identify(device, data["code"], summary=False)
        result = earn(
            device, cashier, identified,
            PurchaseRequest(external_id=data["external_id"], amount=data["amount"], currency=data["currency"],
                            store_id=device.store_id, items=data.get("items", [])),
            key,
        )
        return self.written(result, PurchaseResponseSerializer)


urlpatterns = [
    path("scan/", ScanView.as_view(), name="pos-scan"),
    path("purchases/", PurchaseView.as_view(), name="pos-purchases"),
]
