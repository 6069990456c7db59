"""Customer API: my coupons (redeemed rewards). List, show one, cancel an unused one for its points.

Looked up through the requesting customer, so another customer's coupon is a 404, never a 403.
"""
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api import StandardPagination
from core.errors import NotFound
from wallet import selectors
from wallet.api.permissions import IsCustomer, current_customer
from wallet.api.serializers import (
    REPLAYED_HEADER,
    CouponFilterSerializer,
    CouponResultSerializer,
    CouponSerializer,
    EmptyRequestSerializer,
    customer_scoped_key,
    idempotency_key_from,
    idempotency_parameter,
    replayed_parameter,
)
from wallet.models import Redemption
from wallet.services import cancel_redemption

TAGS = ["coupons"]


def owned_coupon(request, pk: int) -> Redemption:
    try:
        return selectors.get_coupon(current_customer(request), pk)
    except Redemption.DoesNotExist:
        raise NotFound("There is no such coupon in your wallet.") from None


def coupon_result_response(customer, redemption_id: int, balance: int, *, replayed: bool, status_code: int):
    """{coupon, balance} after a redemption or a cancellation. `balance` is the one the service
    returned (the balance right after that change), so a replay answers with the same body."""
    coupon = selectors.get_coupon(customer, redemption_id)
    response = Response(CouponResultSerializer({"coupon": coupon, "balance": balance}).data, status=status_code)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


class CouponListView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = StandardPagination
    serializer_class = CouponSerializer

    @extend_schema(
        operation_id="coupons_list",
        summary="List my coupons",
        description="Coupons from every card, newest first. An issued coupon past `expires_at` keeps its "
        "status but is no longer usable (`is_usable` is false).",
        tags=TAGS,
        parameters=[
            OpenApiParameter(
                "status", OpenApiTypes.STR, location=OpenApiParameter.QUERY, required=False,
                enum=Redemption.Status.values, description="Only coupons with this status",
            )
        ],
        responses={200: CouponSerializer(many=True)},
    )
    def get(self, request):
        query = CouponFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        coupons = selectors.list_coupons(current_customer(request), status=query.validated_data.get("status"))
        page = self.paginate_queryset(coupons)
        return self.get_paginated_response(CouponSerializer(page, many=True).data)


class CouponDetailView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = None
    serializer_class = CouponSerializer

    @extend_schema(
        operation_id="coupons_retrieve",
        summary="One of my coupons",
        tags=TAGS,
        responses={200: CouponSerializer},
    )
    def get(self, request, pk):
        return Response(CouponSerializer(owned_coupon(request, pk)).data)


class CouponCancelView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = None
    serializer_class = CouponResultSerializer

    @extend_schema(
        operation_id="coupons_cancel",
        summary="Cancel an unused coupon and get its points back",
        description="Returns the points through a new ledger entry that reverses the redemption. A used or "
        "cancelled coupon is 409 `redemption_not_cancellable` and nothing is written. Without an "
        "Idempotency-Key the coupon itself is the key, so a repeated cancel answers 200 with the same body "
        "(and `Idempotent-Replayed: true`) and returns the points once.",
        tags=TAGS,
        request=None,
        parameters=[
            idempotency_parameter(required=False, description="Optional: without it the coupon id is the key."),
            replayed_parameter(200),
        ],
        responses={200: OpenApiResponse(CouponResultSerializer, description="The cancelled coupon and the balance")},
    )
    def post(self, request, pk):
        customer = current_customer(request)
        coupon = owned_coupon(request, pk)
        raw_key = idempotency_key_from(request, required=False)
        EmptyRequestSerializer(data=request.data).is_valid(raise_exception=True)
        key = customer_scoped_key(customer, raw_key) if raw_key is not None else f"cancel-redemption-{coupon.pk}"
        result = cancel_redemption(coupon, idempotency_key=key, source="api", actor=request.user)
        return coupon_result_response(
            customer, result.redemption_id, result.balance, replayed=result.replayed, status_code=status.HTTP_200_OK
        )


urlpatterns = [
    path("coupons/", CouponListView.as_view(), name="wallet-coupons"),
    path("coupons/<int:pk>/", CouponDetailView.as_view(), name="wallet-coupon"),
    path("coupons/<int:pk>/cancel/", CouponCancelView.as_view(), name="wallet-coupon-cancel"),
]
