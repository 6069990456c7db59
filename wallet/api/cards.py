"""Customer API: the loyalty cards in the wallet. Join and leave programs, see balance, tier and
progress, read the history, see reachable rewards and redeem one for a coupon.

Every card is looked up through the requesting customer, so another customer's card is a 404,
never a 403. Views only parse, call `wallet.services` and shape the answer.
"""
from django.urls import include, path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.api import NewestFirstCursorPagination, StandardPagination
from core.errors import NotFound
from merchants.models import Program, Reward
from wallet import selectors
from wallet.api.coupons import coupon_result_response
from wallet.api.permissions import IsCustomer, current_customer
from wallet.api.serializers import (
    CardRewardOptionsSerializer,
    CardSerializer,
    CouponResultSerializer,
    EmptyRequestSerializer,
    EnrollRequestSerializer,
    HistoryEntrySerializer,
    RedeemRequestSerializer,
    customer_scoped_key,
    idempotency_key_from,
    idempotency_parameter,
    replayed_parameter,
)
from wallet.models import Card
from wallet.services import enroll, leave_program, redeem_reward

TAGS = ["cards"]


def owned_card(request, pk: int, *, with_progress: bool = False) -> Card:
    customer = current_customer(request)
    try:
        if with_progress:
            return selectors.get_card_with_progress(customer, pk)
        return selectors.get_card(customer, pk)
    except Card.DoesNotExist:
        raise NotFound("There is no such card in your wallet.") from None


def card_response(request, pk: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    card = owned_card(request, pk, with_progress=True)
    return Response(CardSerializer(card).data, status=status_code)


class CardListView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = StandardPagination
    serializer_class = CardSerializer

    @extend_schema(
        operation_id="cards_list",
        summary="List the cards in my wallet",
        description="Every card, active or closed, oldest first, with balance, tier and progress toward "
        "the next tier and the next reward.",
        tags=TAGS,
        responses={200: CardSerializer(many=True)},
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.list_cards(current_customer(request)))
        return self.get_paginated_response(CardSerializer(page, many=True).data)

    @extend_schema(
        operation_id="cards_enroll",
        summary="Join a program",
        description="Creates a card (201) and pays the program's welcome bonus once. If the wallet already "
        "holds a card of this program, returns it (200) with no second bonus; a card closed by leaving "
        "the program is reopened with its history. An unknown or inactive program is a 400.",
        tags=TAGS,
        request=EnrollRequestSerializer,
        responses={
            201: OpenApiResponse(CardSerializer, description="Joined: a new card"),
            200: OpenApiResponse(CardSerializer, description="Already a member: the existing card"),
        },
    )
    def post(self, request):
        body = EnrollRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        program = (
            Program.objects.filter(pk=body.validated_data["program_id"], is_active=True, merchant__is_active=True)
            .select_related("merchant")
            .first()
        )
        if program is None:
            raise serializers.ValidationError({"program_id": ["No program accepting members has this id."]})
        result = enroll(current_customer(request), program)
        return card_response(
            request, result.card.pk, status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )


class CardDetailView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = None
    serializer_class = CardSerializer

    @extend_schema(
        operation_id="cards_retrieve",
        summary="One card of my wallet",
        tags=TAGS,
        responses={200: CardSerializer},
    )
    def get(self, request, pk):
        return card_response(request, pk)


class CardLeaveView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = None
    serializer_class = CardSerializer

    @extend_schema(
        operation_id="cards_leave",
        summary="Leave the program",
        description="Closes the card: no more earning or redeeming. Its balance and history are kept and "
        "stay readable; joining the program again reopens it. Leaving a closed card changes nothing.",
        tags=TAGS,
        request=None,
        responses={200: OpenApiResponse(CardSerializer, description="The closed card")},
    )
    def post(self, request, pk):
        card = owned_card(request, pk)
        EmptyRequestSerializer(data=request.data).is_valid(raise_exception=True)
        leave_program(card)
        return card_response(request, pk)


class CardHistoryView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = NewestFirstCursorPagination
    serializer_class = HistoryEntrySerializer

    @extend_schema(
        operation_id="cards_history",
        summary="The card's points history",
        description="Ledger entries, newest first, each with the purchase or the reward it came from. "
        "Follow `next` to page back in time; new entries never shift a page already fetched.",
        tags=TAGS,
        responses={200: HistoryEntrySerializer(many=True)},
    )
    def get(self, request, pk):
        card = owned_card(request, pk)
        page = self.paginate_queryset(selectors.list_card_history(card))
        return self.get_paginated_response(HistoryEntrySerializer(page, many=True).data)


class CardRewardsView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = None
    serializer_class = CardRewardOptionsSerializer

    @extend_schema(
        operation_id="cards_rewards",
        summary="Rewards I can redeem now, and the ones I almost can",
        description="`redeemable`: the program's active, in-stock rewards the balance affords, cheapest "
        "first. `almost`: the three cheapest it does not afford yet, with the points still needed. "
        "A closed card is offered nothing.",
        tags=TAGS,
        responses={200: CardRewardOptionsSerializer},
    )
    def get(self, request, pk):
        card = owned_card(request, pk, with_progress=True)
        return Response(CardRewardOptionsSerializer(selectors.reward_options_for(card)).data)


class CardRedemptionsView(GenericAPIView):
    permission_classes = [IsCustomer]
    pagination_class = None
    serializer_class = CouponResultSerializer

    @extend_schema(
        operation_id="cards_redeem",
        summary="Redeem a reward for a coupon",
        description="Spends the reward's points and issues a single-use coupon. Never overdraws: without "
        "enough points the answer is 409 `insufficient_points` and nothing is written. A retry with the "
        "same Idempotency-Key answers 201 with the same body and the header `Idempotent-Replayed: true`, "
        "and writes nothing; the same key with a different reward is 409 `idempotency_key_reused`.",
        tags=TAGS,
        request=RedeemRequestSerializer,
        parameters=[
            idempotency_parameter(required=True, description="Required: a retry with it never redeems twice."),
            replayed_parameter(201),
        ],
        responses={201: OpenApiResponse(CouponResultSerializer, description="The coupon and the new balance")},
    )
    def post(self, request, pk):
        card = owned_card(request, pk)
        raw_key = idempotency_key_from(request, required=True)
        body = RedeemRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # Not filtered on availability: the service judges that under the lock, and a retry of a
        # redemption whose reward has since been withdrawn must still replay its first answer.
        reward = Reward.objects.filter(pk=body.validated_data["reward_id"], program_id=card.program_id).first()
        if reward is None:
            raise serializers.ValidationError({"reward_id": ["This card's program has no reward with this id."]})
        customer = current_customer(request)
        result = redeem_reward(
            card, reward, idempotency_key=customer_scoped_key(customer, raw_key), source="api", actor=request.user
        )
        return coupon_result_response(
            customer, result.redemption_id, result.balance, replayed=result.replayed, status_code=201
        )


urlpatterns = [
    path("cards/", CardListView.as_view(), name="wallet-cards"),
    path("cards/<int:pk>/", CardDetailView.as_view(), name="wallet-card"),
    path("cards/<int:pk>/leave/", CardLeaveView.as_view(), name="wallet-card-leave"),
    path("cards/<int:pk>/history/", CardHistoryView.as_view(), name="wallet-card-history"),
    path("cards/<int:pk>/rewards/", CardRewardsView.as_view(), name="wallet-card-rewards"),
    path("cards/<int:pk>/redemptions/", CardRedemptionsView.as_view(), name="wallet-card-redemptions"),
    path("", include("wallet.api.coupons")),
]
