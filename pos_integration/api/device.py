"""What a till learns about itself on start-up, and a cashier signing in with their PIN."""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.money import minor_unit_exponent
from pos_integration.api.base import TAGS, CounterView, cashier_parameters
from pos_integration.cashiers import counter_cashiers


class CashierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="First name (or login) only")


class DeviceInfoSerializer(serializers.Serializer):
    device = serializers.CharField(help_text="This device's name")
    store = serializers.CharField()
    merchant = serializers.CharField()
    currency = serializers.CharField()
    currency_exponent = serializers.IntegerField(help_text="Decimal places of the currency (2 for EUR, 0 for JPY)")
    cashiers = CashierSerializer(many=True)


class CashierCheckSerializer(serializers.Serializer):
    cashier = CashierSerializer()


def _cashier(staff) -> dict:
    return {"id": staff.pk, "name": staff.display_name}


class DeviceInfoView(CounterView):
    @extend_schema(summary="This device, its store and the cashiers who can sign in", responses=DeviceInfoSerializer,
                   tags=TAGS)
    def get(self, request):
        device = self.device(request)
        merchant = device.merchant
        return Response(DeviceInfoSerializer({
            "device": device.name, "store": device.store.name, "merchant": merchant.name,
            "currency": merchant.currency, "currency_exponent": minor_unit_exponent(merchant.currency),
            "cashiers": [_cashier(s) for s in counter_cashiers(device)],
        }).data)


class CashierCheckView(CounterView):
    @extend_schema(summary="Check a cashier's PIN (sign in at the till)", request=None,
                   responses=CashierCheckSerializer, parameters=cashier_parameters(required=True), tags=TAGS)
    def post(self, request):
        return Response(CashierCheckSerializer({"cashier": _cashier(self.cashier(request, required=True))}).data)


urlpatterns = [
    path("device/", DeviceInfoView.as_view(), name="pos-device"),
    path("cashiers/check/", CashierCheckView.as_view(), name="pos-cashier-check"),
]
