"""The public merchant directory: browse merchants and their programs, and find stores near a point.

Public on purpose (a prospective customer browses before signing up), so these views neither require
nor read credentials: a stale token left in an app must not turn a public page into a 401.
"""
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny

from merchants import selectors
from merchants.models import Merchant, Program, Reward, Store, Tier

SEARCH_MAX_LENGTH = 100


# Serializers ---------------------------------------------------------------------------------------


class DirectoryTierSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = ["name", "threshold", "multiplier"]


class DirectoryRewardSerializer(serializers.ModelSerializer):
    class Meta:
        model = Reward
        fields = ["id", "name", "kind", "value", "points_cost"]


class DirectoryProgramSerializer(serializers.ModelSerializer):
    tiers = DirectoryTierSerializer(many=True, read_only=True)
    rewards = DirectoryRewardSerializer(many=True, read_only=True, source="directory_rewards")

    class Meta:
        model = Program
        fields = [
            "id", "name", "points_per_currency_unit", "rounding", "welcome_bonus", "points_validity_days",
            "tiers", "rewards",
        ]


class DirectoryStoreSerializer(serializers.ModelSerializer):
    address = serializers.CharField(source="address_line", read_only=True)
    # Floats, not the model's decimal strings: map clients take numbers.
    latitude = serializers.FloatField(read_only=True, allow_null=True)
    longitude = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Store
        fields = ["id", "name", "address", "postal_code", "city", "country", "latitude", "longitude", "time_zone"]


class DirectoryMerchantSerializer(serializers.ModelSerializer):
    programs = DirectoryProgramSerializer(many=True, read_only=True, source="directory_programs")
    stores = DirectoryStoreSerializer(many=True, read_only=True, source="directory_stores")

    class Meta:
        model = Merchant
        fields = ["id", "name", "currency", "time_zone", "brand_color", "programs", "stores"]


class NearbyMerchantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Merchant
        fields = ["id", "name", "brand_color"]


class NearbyStoreSerializer(serializers.Serializer):
    """A `selectors.NearbyStore`: the store's directory fields, its merchant, distance and whether it is open."""

    id = serializers.IntegerField(source="store.id", read_only=True)
    name = serializers.CharField(source="store.name", read_only=True)
    address = serializers.CharField(source="store.address_line", read_only=True)
    postal_code = serializers.CharField(source="store.postal_code", read_only=True)
    city = serializers.CharField(source="store.city", read_only=True)
    country = serializers.CharField(source="store.country", read_only=True)
    latitude = serializers.FloatField(source="store.latitude", read_only=True)
    longitude = serializers.FloatField(source="store.longitude", read_only=True)
    time_zone = serializers.CharField(source="store.time_zone", read_only=True)
    merchant = NearbyMerchantSerializer(source="store.merchant", read_only=True)
    distance_m = serializers.IntegerField(read_only=True, help_text="Great-circle distance in whole metres")
    is_open_now = serializers.BooleanField(
        read_only=True, help_text="Open at this moment by its opening hours, in the store's own time zone"
    )


class DirectorySearchSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=SEARCH_MAX_LENGTH)


class NearbyQuerySerializer(serializers.Serializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    radius_km = serializers.FloatField(required=False, default=selectors.DEFAULT_RADIUS_KM)

    def validate_radius_km(self, value):
        if not 0 < value <= selectors.MAX_RADIUS_KM:
            raise serializers.ValidationError(f"Must be more than 0 and at most {selectors.MAX_RADIUS_KM:g} km.")
        return value


# Views ---------------------------------------------------------------------------------------------


class PublicMixin:
    authentication_classes: list = []
    permission_classes = [AllowAny]


@extend_schema(
    tags=["directory"],
    summary="Browse merchants",
    description="Active merchants with their active programs (tiers, active rewards) and active stores. "
    "Public: no authentication needed.",
    parameters=[
        OpenApiParameter(
            "search", {"type": "string", "maxLength": SEARCH_MAX_LENGTH},
            description="Case-insensitive part of a merchant's name or of the city of one of its stores",
        ),
    ],
    responses=DirectoryMerchantSerializer(many=True),
)
class MerchantDirectoryView(PublicMixin, generics.ListAPIView):
    serializer_class = DirectoryMerchantSerializer

    def get_queryset(self):
        query = DirectorySearchSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.list_directory_merchants(search=query.validated_data.get("search"))


@extend_schema(
    tags=["directory"],
    summary="One merchant in the directory",
    description="The same view of one merchant as the list gives. Unknown or inactive merchants are 404.",
    responses=DirectoryMerchantSerializer,
)
class MerchantDirectoryDetailView(PublicMixin, generics.RetrieveAPIView):
    serializer_class = DirectoryMerchantSerializer

    def get_object(self):
        return selectors.get_directory_merchant(self.kwargs["pk"])


@extend_schema(
    tags=["directory"],
    summary="Stores near a point",
    description="Active stores of active merchants within the radius, nearest first by great-circle "
    "distance, each with whether it is open now in its own time zone. Public: no authentication needed.",
    parameters=[
        OpenApiParameter(
            "latitude", {"type": "number", "format": "double", "minimum": -90, "maximum": 90},
            required=True, description="Latitude of the point, in degrees (WGS 84)",
        ),
        OpenApiParameter(
            "longitude", {"type": "number", "format": "double", "minimum": -180, "maximum": 180},
            required=True, description="Longitude of the point, in degrees (WGS 84)",
        ),
        OpenApiParameter(
            "radius_km",
            {
                "type": "number", "format": "double", "minimum": 0, "exclusiveMinimum": True,
                "maximum": selectors.MAX_RADIUS_KM,
                "default": selectors.DEFAULT_RADIUS_KM,
            },
            description=f"Search radius in kilometres, more than 0 and at most {selectors.MAX_RADIUS_KM:g}",
        ),
    ],
    responses=NearbyStoreSerializer(many=True),
)
class NearbyStoresView(PublicMixin, generics.GenericAPIView):
    serializer_class = NearbyStoreSerializer

    def get(self, request):
        query = NearbyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        nearby = selectors.list_nearby_stores(**query.validated_data)
        page = self.paginate_queryset(nearby)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


urlpatterns = [
    path("merchants/", MerchantDirectoryView.as_view(), name="directory-merchants"),
    path("merchants/<int:pk>/", MerchantDirectoryDetailView.as_view(), name="directory-merchant"),
    path("stores/nearby/", NearbyStoresView.as_view(), name="stores-nearby"),
]
