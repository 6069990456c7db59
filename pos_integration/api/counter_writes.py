"""Counter writes that need a cashier's PIN: redeem (a reward or a coupon), refund, adjust."""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from core.api import StrictSerializer
from pos_integration.api.base import TAGS, CounterView, write_parameters
from pos_integration.counter import identify
from pos_integration.counter_actions import adjust, redeem, refund
from wallet.api.serializers import idempotency_key_from
from wallet.services.validation import MAX_POINTS_DELTA


class CounterRedeemRequestSerializer(StrictSerializer):
    code = serializers.CharField(
        max_length=200, help_text="The pass's live QR token (with reward_id), or a coupon code. Never the card number."
    )
    reward_id = serializers.IntegerField(required=False, help_text="With a token: the reward to give")
    external_id = serializers.CharField(
        max_length=128, required=False, default="",
        help_text="The POS's id of the sale the reward is given on: refunding that sale returns the points spent",
    )


class CounterRedeemResponseSerializer(serializers.Serializer):
    redemption_id = serializers.IntegerField()
    reward = serializers.CharField()
    points = serializers.IntegerField(help_text="Points the reward cost")
    balance = serializers.IntegerField()


class CounterRefundRequestSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=128, help_text="The POS's id of the sale to refund")
    amount = serializers.IntegerField(
        min_value=1, max_value=1_000_000_000, required=False,
        help_text="Minor units to refund; absent means all that remains",
    )


class CounterRefundResponseSerializer(serializers.Serializer):
    purchase_id = serializers.IntegerField()
    refunded_amount = serializers.IntegerField(help_text="Total refunded on this sale so far")
    points_reversed = serializers.IntegerField(help_text="Points this refund took back")
    points_returned = serializers.IntegerField(
        help_text="Points spent on rewards given on this sale that this refund gave back"
    )
    balance = serializers.IntegerField(allow_null=True, help_text="Null for a sale no card has claimed")


class CounterAdjustRequestSerializer(StrictSerializer):
    code = serializers.CharField(max_length=200, help_text="Card number or the pass's QR token")
    delta = serializers.IntegerField(min_value=-MAX_POINTS_DELTA, max_value=MAX_POINTS_DELTA)
    reason = serializers.CharField(max_length=255)


class CounterAdjustResponseSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    delta = serializers.IntegerField()
    balance = serializers.IntegerField()


class RedeemView(CounterView):
    @extend_schema(summary="Redeem a reward (live pass token) or use a coupon", request=CounterRedeemRequestSerializer,
                   responses={201: CounterRedeemResponseSerializer}, tags=TAGS,
                   parameters=write_parameters(cashier_required=True, description="Unique per redemption."))
    def post(self, request):
        device = self.device(request)
        key = idempotency_key_from(request, required=True)
        data = self.body(CounterRedeemRequestSerializer, request)
        cashier = self.cashier(request, required=True)
        result = redeem(device, cashier, identify(device, data["code"]), data.get("reward_id"), key,
                        sale_external_id=data["external_id"])
        return self.written(result, CounterRedeemResponseSerializer)


class RefundView(CounterView):
    @extend_schema(summary="Refund a sale by its POS id; its points come back pro rata",
                   request=CounterRefundRequestSerializer, responses={201: CounterRefundResponseSerializer}, tags=TAGS,
                   parameters=write_parameters(cashier_required=True, description="Unique per refund."))
    def post(self, request):
        device = self.device(request)
        key = idempotency_key_from(request, required=True)
        data = self.body(CounterRefundRequestSerializer, request)
        cashier = self.cashier(request, required=True)
        return self.written(refund(device, cashier, data["external_id"], data.get("amount"), key),
                            CounterRefundResponseSerializer)


class AdjustView(CounterView):
    @extend_schema(summary="Add or remove points by hand, with a reason", request=CounterAdjustRequestSerializer,
                   responses={201: CounterAdjustResponseSerializer}, tags=TAGS,
                   parameters=write_parameters(cashier_required=True, description="Unique per adjustment."))
    def post(self, request):
        device = self.device(request)
        key = idempotency_key_from(request, required=True)
        data = self.body(CounterAdjustRequestSerializer, request)
        cashier = self.cashier(request, required=True)
        identified = identify(device, data["code"])
        return self.written(adjust(device, cashier, identified, data["delta"], data["reason"], key),
                            CounterAdjustResponseSerializer)


urlpatterns = [
    path("redemptions/", RedeemView.as_view(), name="pos-redemptions"),
    path("refunds/", RefundView.as_view(), name="pos-refunds"),
    path("adjustments/", AdjustView.as_view(), name="pos-adjustments"),
]
