"""`POST /api/pos/v1/offline-batches/`: upload the purchases a till queued while offline."""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.api import StrictSerializer
from pos_integration.api.base import TAGS, CounterView, cashier_parameters
from pos_integration.offline import MAX_BATCH, QueuedPurchase, upload_batch
from wallet.idempotency import MAX_KEY_LENGTH


class QueuedPurchaseSerializer(StrictSerializer):
    idempotency_key = serializers.CharField(max_length=MAX_KEY_LENGTH, help_text="Unique per sale on this device")
    code = serializers.CharField(max_length=200, help_text="The pass token scanned at the time (from the QR)")
    external_id = serializers.CharField(max_length=128)
    amount = serializers.IntegerField(min_value=1, max_value=1_000_000_000, help_text="Minor units")
    currency = serializers.RegexField(r"^[A-Z]{3}$")
    occurred_at = serializers.DateTimeField(help_text="When the sale happened (RFC 3339 with offset)")
    items = serializers.ListField(child=serializers.DictField(), required=False, max_length=500)


class BatchRequestSerializer(StrictSerializer):
    purchases = QueuedPurchaseSerializer(many=True, max_length=MAX_BATCH, allow_empty=False)


class OutcomeSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField()
    external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["earned", "replayed", "rejected"])
    purchase_id = serializers.IntegerField(required=False)
    points_earned = serializers.IntegerField(required=False)
    balance = serializers.IntegerField(required=False)
    error = serializers.DictField(required=False, help_text="For a rejected sale: code, message, fields")


class BatchResponseSerializer(serializers.Serializer):
    earned = serializers.IntegerField()
    replayed = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = OutcomeSerializer(many=True, help_text="One per uploaded purchase, in the same order")


class OfflineBatchView(CounterView):
    @extend_schema(
        summary="Upload purchases queued while offline (up to 500); each is judged on its own",
        request=BatchRequestSerializer, responses=BatchResponseSerializer, tags=TAGS,
        parameters=cashier_parameters(required=False),
    )
    def post(self, request):
        device = self.device(request)
        data = self.body(BatchRequestSerializer, request)
        cashier = self.cashier(request, required=False)
        queued = [QueuedPurchase(items=p.get("items", []), **{k: v for k, v in p.items() if k != "items"})
                  for p in data["purchases"]]
        results = upload_batch(device, cashier, queued)
        counts = {status: sum(1 for r in results if r["status"] == status) for status in ("earned", "replayed",
                                                                                           "rejected")}
        return Response(BatchResponseSerializer({**counts, "results": results}).data)


urlpatterns = [path("offline-batches/", OfflineBatchView.as_view(), name="pos-offline-batches")]
