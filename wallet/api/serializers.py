"""Shapes of the customer API's cards, history, rewards and coupons, and the Idempotency-Key header.

Output serializers only read: every change goes through `wallet.services`. Input serializers are
strict (unknown fields are a 400), and ids are bounded so no value can overflow a database integer.
"""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from core.api import StrictSerializer
from wallet import selectors
from wallet.errors import InvalidRequest
from wallet.idempotency import MAX_KEY_LENGTH, scoped_key
from wallet.models import Card, LedgerEntry, Redemption

# Input ------------------------------------------------------------------------------------------------

def id_field(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=selectors.MAX_ID, help_text=help_text)


class EnrollRequestSerializer(StrictSerializer):
    program_id = id_field("The program to join (from the merchant directory).")


class RedeemRequestSerializer(StrictSerializer):
    reward_id = id_field("A reward of this card's program.")


class EmptyRequestSerializer(StrictSerializer):
    """No body expected; any field sent is refused rather than silently ignored."""


class CouponFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Redemption.Status.choices, required=False)


# Idempotency-Key header --------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_parameter(*, required: bool, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        IDEMPOTENCY_HEADER, {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        location=OpenApiParameter.HEADER, required=required,
        description=f"1 to {MAX_KEY_LENGTH} characters, unique per request, e.g. a UUID. {description}",
    )


REPLAYED_HEADER = "Idempotent-Replayed"


def replayed_parameter(status_code: int) -> OpenApiParameter:
    return OpenApiParameter(
        REPLAYED_HEADER, OpenApiTypes.STR, location=OpenApiParameter.HEADER, response=[status_code],
        description='"true" when this answer replays the first result of the same idempotency key: '
        "nothing was written. Absent otherwise.",
    )


def idempotency_key_from(request, *, required: bool) -> str | None:
    """The request's Idempotency-Key header, checked: 1 to 255 characters, not blank."""
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        if not required:
            return None
        raise InvalidRequest(
            f"The {IDEMPOTENCY_HEADER} header is required, so that a retry can never act twice.",
            fields={IDEMPOTENCY_HEADER: ["Required."]},
        )
    if not raw.strip() or len(raw) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"The {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} characters.",
            fields={IDEMPOTENCY_HEADER: [f"1 to {MAX_KEY_LENGTH} characters."]},
        )
    return raw


def customer_scoped_key(customer, raw: str) -> str:
    return scoped_key(f"api:customer-{customer.pk}", raw)


# Cards ------------------------------------------------------------------------------------------------

class CardMerchantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    brand_color = serializers.CharField(help_text="Hex colour, e.g. #1F2937")


class CardProgramSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CardTierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    multiplier = serializers.DecimalField(max_digits=4, decimal_places=2, help_text="Applied to points earned")


class CardNextTierSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="tier.id")
    name = serializers.CharField(source="tier.name")
    threshold = serializers.IntegerField(source="tier.threshold", help_text="Lifetime points that reach it")
    points_needed = serializers.IntegerField(help_text="Lifetime points still to earn")


class CardRewardProgressSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="reward.id")
    name = serializers.CharField(source="reward.name")
    kind = serializers.CharField(source="reward.kind")
    value = serializers.IntegerField(
        source="reward.value", help_text="Minor units for amount_off, percent for percent_off"
    )
    points_cost = serializers.IntegerField(source="reward.points_cost")
    points_needed = serializers.IntegerField(help_text="Points the balance still lacks; 0 when redeemable")


class CardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(help_text="Card number with a Luhn check digit")
    status = serializers.ChoiceField(choices=Card.Status.choices)
    merchant = CardMerchantSerializer()
    program = CardProgramSerializer()
    balance = serializers.IntegerField(help_text="Points available to spend")
    lifetime_points = serializers.IntegerField(help_text="Points ever earned, less reversals; sets the tier")
    tier = CardTierSerializer(allow_null=True)
    next_tier = serializers.SerializerMethodField()
    next_reward = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(CardNextTierSerializer(allow_null=True))
    def get_next_tier(self, card):
        progress = selectors.next_tier_for(card)
        return CardNextTierSerializer(progress).data if progress else None

    @extend_schema_field(CardRewardProgressSerializer(allow_null=True))
    def get_next_reward(self, card):
        progress = selectors.next_reward_for(card)
        return CardRewardProgressSerializer(progress).data if progress else None


class CardRewardOptionsSerializer(serializers.Serializer):
    redeemable = CardRewardProgressSerializer(many=True, help_text="Active, in-stock rewards the balance affords now")
    almost = CardRewardProgressSerializer(
        many=True, help_text=f"The (up to {selectors.ALMOST_REWARDS}) cheapest rewards not affordable yet"
    )


# History ------------------------------------------------------------------------------------------------

class HistoryPurchaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(help_text="The till's own id for the sale")
    amount = serializers.IntegerField(help_text="Minor units")
    currency = serializers.CharField(help_text="ISO 4217")
    store = serializers.CharField(source="store.name", allow_null=True, help_text="Store name")


class HistoryRewardSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="reward.id")
    name = serializers.CharField(source="reward.name")
    coupon_id = serializers.IntegerField(source="id")
    coupon_code = serializers.CharField()


class HistoryEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices)
    delta = serializers.IntegerField(help_text="Signed points")
    balance_after = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    reason = serializers.CharField(help_text="Why, for adjustments; may be empty")
    offer_title = serializers.CharField(help_text="The offer that boosted this purchase's points; may be empty")
    purchase = HistoryPurchaseSerializer(allow_null=True, help_text="The purchase this entry came from")
    reward = serializers.SerializerMethodField(help_text="The reward (and coupon) this entry came from")

    @extend_schema_field(HistoryRewardSerializer(allow_null=True))
    def get_reward(self, entry):
        return HistoryRewardSerializer(entry.redemption).data if entry.redemption_id else None


# Coupons ------------------------------------------------------------------------------------------------

class CouponRewardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CouponCardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()


class CouponSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(source="coupon_code", help_text="Single-use code to show at the counter")
    status = serializers.ChoiceField(choices=Redemption.Status.choices)
    is_usable = serializers.SerializerMethodField(help_text="Issued and not expired: a cashier can accept it")
    points = serializers.IntegerField(help_text="Points spent on it")
    reward = CouponRewardSerializer()
    merchant = CardMerchantSerializer()
    card = CouponCardSerializer()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    points_returned = serializers.IntegerField(
        help_text="Points given back because the sale it was used on was refunded (pro rata to the refund)"
    )

    def get_is_usable(self, coupon) -> bool:
        return coupon.status == Redemption.Status.ISSUED and coupon.expires_at > timezone.now()


class CouponResultSerializer(serializers.Serializer):
    coupon = CouponSerializer()
    balance = serializers.IntegerField(help_text="The card's balance right after this change")
