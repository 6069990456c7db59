"""Third-party cards in the customer's wallet: list, add, read, edit and remove, by barcode.

Every queryset goes through the caller's own wallet, so another customer's card is 404. The views
only translate HTTP; validation of the card as a whole lives in `wallet.services.external_cards`.
"""
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers

from core.api import StrictModelSerializer
from wallet.api.permissions import IsCustomer, current_customer
from wallet.models import ExternalCard
from wallet.services import (
    ExternalCardChanges,
    ExternalCardDraft,
    add_external_card,
    remove_external_card,
    update_external_card,
)
from wallet.services.external_cards import NAME_MAX_LENGTH, NOTE_MAX_LENGTH


class ExternalCardSerializer(StrictModelSerializer):
    """Another store's card kept in the wallet by its barcode."""

    name = serializers.CharField(min_length=1, max_length=NAME_MAX_LENGTH)
    color = serializers.RegexField(
        r"^#[0-9A-Fa-f]{6}$", required=False, max_length=7,
        error_messages={"invalid": "A colour is # followed by six hexadecimal digits, e.g. #FF8800."},
        help_text="Hex colour #RRGGBB",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)

    class Meta:
        model = ExternalCard
        fields = ["id", "name", "barcode_value", "barcode_format", "color", "note", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "barcode_value": {
                "help_text": "The value the barcode encodes, checked against its format "
                "(e.g. an EAN-13's check digit). Surrounding whitespace is removed."
            },
        }


ID_PARAMETER = OpenApiParameter("id", int, location="path", description="The external card's id")


@extend_schema_view(
    get=extend_schema(
        tags=["external cards"], summary="List my third-party cards", responses=ExternalCardSerializer(many=True)
    ),
    post=extend_schema(
        tags=["external cards"], summary="Add a third-party card", request=ExternalCardSerializer,
        responses={201: ExternalCardSerializer},
    ),
)
class ExternalCardListView(generics.ListCreateAPIView):
    permission_classes = [IsCustomer]
    serializer_class = ExternalCardSerializer

    def get_queryset(self):
        return ExternalCard.objects.filter(wallet=current_customer(self.request).wallet)

    def perform_create(self, serializer):
        serializer.instance = add_external_card(
            current_customer(self.request).wallet, ExternalCardDraft(**serializer.validated_data)
        )


@extend_schema_view(
    get=extend_schema(
        tags=["external cards"], summary="One of my third-party cards", parameters=[ID_PARAMETER],
        responses=ExternalCardSerializer,
    ),
    patch=extend_schema(
        tags=["external cards"], summary="Edit a third-party card", parameters=[ID_PARAMETER],
        description="Only the fields sent change; the barcode value is re-checked against the format "
        "the card ends up with.",
        request=ExternalCardSerializer, responses=ExternalCardSerializer,
    ),
    delete=extend_schema(
        tags=["external cards"], summary="Remove a third-party card", parameters=[ID_PARAMETER],
        responses={204: None},
    ),
)
class ExternalCardDetailView(generics.RetrieveUpdateDestroyAPIView):
    permission_classes = [IsCustomer]
    serializer_class = ExternalCardSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return ExternalCard.objects.filter(wallet=current_customer(self.request).wallet)

    def perform_update(self, serializer):
        changes = ExternalCardChanges(**serializer.validated_data)
        serializer.instance = update_external_card(serializer.instance, changes)

    def perform_destroy(self, instance):
        remove_external_card(instance)


urlpatterns = [
    path("external-cards/", ExternalCardListView.as_view(), name="external-cards"),
    path("external-cards/<int:pk>/", ExternalCardDetailView.as_view(), name="external-card"),
]
