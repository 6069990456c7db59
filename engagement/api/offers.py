"""GET /api/v1/offers/: the offers open now for the signed-in customer, most relevant first.

Only the merchants the customer holds an active card with: another customer's cards, closed cards and
offers outside their period, audience, weekdays or hours (each store's own clock) never appear. How the
order is decided: engagement.ranking. A location sent with the request is remembered as the customer's
last-seen location (engagement.offers.record_last_seen), so later requests without one still rank by
distance.
"""
import math

from django.db import transaction
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from core.api import StandardPagination
from engagement.models import Offer
from engagement.offers import record_last_seen
from engagement.ranking import rank_offers
from wallet.api.permissions import IsCustomer, current_customer


class OffersQuerySerializer(serializers.Serializer):
    latitude = serializers.FloatField(required=False, min_value=-90, max_value=90)
    longitude = serializers.FloatField(required=False, min_value=-180, max_value=180)

    def validate_latitude(self, value):
        return _finite(value)

    def validate_longitude(self, value):
        return _finite(value)

    def validate(self, attrs):
        if ("latitude" in attrs) != ("longitude" in attrs):
            missing = "longitude" if "latitude" in attrs else "latitude"
            raise serializers.ValidationError({missing: ["Give latitude and longitude together, or neither."]})
        return attrs


def _finite(value: float) -> float:
    if not math.isfinite(value):  # "nan" passes the range checks, since nothing compares with NaN
        raise serializers.ValidationError("A valid number is required.")
    return value


class OfferMerchantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OfferRewardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class NearestStoreSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    distance_m = serializers.IntegerField(help_text="Great-circle distance in whole metres")


class RankedOfferSerializer(serializers.Serializer):
    """An engagement.ranking.RankedOffer."""

    id = serializers.IntegerField(source="offer.id", help_text="The offer")
    merchant = OfferMerchantSerializer(source="offer.merchant")
    card_id = serializers.IntegerField(source="card.id", help_text="The card of mine it applies to")
    title = serializers.CharField(source="offer.title")
    description = serializers.CharField(source="offer.description")
    kind = serializers.ChoiceField(source="offer.kind", choices=Offer.Kind.choices)
    multiplier = serializers.DecimalField(source="offer.multiplier", max_digits=4, decimal_places=2, allow_null=True,
                                          help_text="Points multiplier (points_multiplier offers)")
    bonus_points = serializers.IntegerField(source="offer.bonus_points", allow_null=True,
                                            help_text="Points added to a purchase (bonus_points offers)")
    reward = serializers.SerializerMethodField(help_text="The extra reward (extra_reward offers)")
    discount_text = serializers.CharField(source="offer.discount_text")
    coupon_code = serializers.CharField(source="offer.coupon_code", help_text="Show at the counter; may be empty")
    valid_until = serializers.DateTimeField(source="offer.valid_until", allow_null=True)
    nearest_store = serializers.SerializerMethodField(
        help_text="The nearest store where it is open now; null without a location (sent or remembered)"
    )
    open_until = serializers.SerializerMethodField(
        help_text="When it stops at that store (its hours or its end), in the store's local time with its "
        "UTC offset, e.g. 2026-03-02T10:00:00+09:00; null when no end is in sight"
    )
    score = serializers.FloatField(help_text="Relevance; higher ranks first")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why it ranks where it does")

    @extend_schema_field(OfferRewardSerializer(allow_null=True))
    def get_reward(self, ranked):
        reward = ranked.offer.reward
        return {"id": reward.pk, "name": reward.name} if reward is not None else None

    @extend_schema_field(NearestStoreSerializer(allow_null=True))
    def get_nearest_store(self, ranked):
        if ranked.distance_m is None:
            return None
        return {"id": ranked.nearest_store.pk, "name": ranked.nearest_store.name, "distance_m": ranked.distance_m}

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True,
                          "example": "2026-03-02T10:00:00+09:00"})
    def get_open_until(self, ranked):
        return ranked.open_until.isoformat() if ranked.open_until is not None else None


class OffersView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = StandardPagination
    serializer_class = RankedOfferSerializer

    @extend_schema(
        operation_id="offers_list",
        summary="Offers for me, most relevant first",
        description="Offers of the merchants I hold an active card with that are open right now at at least "
        "one of their stores (weekdays and hours on each store's own clock), fit my card (audience; welcome "
        "offers while my card is new), ranked by distance to the nearest such store, how soon they end, "
        "and my purchases at the merchant. Send latitude and longitude together, or neither: sent, they "
        "are remembered as my last-seen location; without them that location, else my home, is used.",
        tags=["offers"],
        parameters=[
            OpenApiParameter("latitude", {"type": "number", "format": "double", "minimum": -90, "maximum": 90},
                             description="Where I am, in degrees (WGS 84); with longitude"),
            OpenApiParameter("longitude", {"type": "number", "format": "double", "minimum": -180, "maximum": 180},
                             description="Where I am, in degrees (WGS 84); with latitude"),
        ],
        responses={200: RankedOfferSerializer(many=True)},
    )
    def get(self, request):
        query = OffersQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer, now = current_customer(request), timezone.now()
        latitude, longitude = query.validated_data.get("latitude"), query.validated_data.get("longitude")
        with transaction.atomic():  # a page past the end (404) must not leave the location remembered
            if latitude is not None:
                record_last_seen(customer, latitude, longitude, now=now)
            ranked = rank_offers(customer, now=now, latitude=latitude, longitude=longitude)
            page = self.paginate_queryset(ranked)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


urlpatterns = [path("offers/", OffersView.as_view(), name="offers")]
