"""Reads of the wallet that more than one caller needs: a customer's cards with their progress,
card history, the rewards a card can reach, and coupons.

Every function that takes a `customer` returns only that customer's rows, so a caller that looks
an object up through them can never reach another customer's card or coupon (it is simply not
found). The list querysets load what their representation shows in a fixed number of queries,
however many rows there are.
"""
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet

from merchants.models import Reward, Tier
from wallet.models import Card, Customer, LedgerEntry, Redemption

# The largest value a BigAutoField key can hold: anything above is no row of ours.
MAX_ID = 2**63 - 1
ALMOST_REWARDS = 3


def available_rewards_filter() -> Q:
    """Rewards a customer can be offered: active and in stock (an empty stock means unlimited)."""
    return Q(is_active=True) & (Q(stock__isnull=True) | Q(stock__gt=0))


# Cards ----------------------------------------------------------------------------------------------

def list_cards(customer: Customer) -> QuerySet[Card]:
    """The customer's cards, oldest first, with what the card representation needs preloaded:
    merchant, program, tier, the program's tiers by threshold (`program.tiers_by_threshold`) and its
    available rewards by cost (`program.available_rewards`)."""
    return (
        Card.objects.filter(wallet__customer=customer)
        .select_related("merchant", "program", "tier")
        .prefetch_related(
            Prefetch("program__tiers", queryset=Tier.objects.order_by("threshold"), to_attr="tiers_by_threshold"),
            Prefetch(
                "program__rewards",
                queryset=Reward.objects.filter(available_rewards_filter()).order_by("points_cost", "id"),
                to_attr="available_rewards",
            ),
        )
        .order_by("created_at", "id")
    )


def get_card_with_progress(customer: Customer, card_id: int) -> Card:
    """One of the customer's cards, loaded like `list_cards`. Raises Card.DoesNotExist otherwise."""
    if not 0 < card_id <= MAX_ID:
        raise Card.DoesNotExist()
    return list_cards(customer).get(pk=card_id)


def get_card(customer: Customer, card_id: int) -> Card:
    """One of the customer's cards, with its program and merchant. Raises Card.DoesNotExist otherwise."""
    if not 0 < card_id <= MAX_ID:
        raise Card.DoesNotExist()
    return Card.objects.select_related("program", "merchant").get(wallet__customer=customer, pk=card_id)


@dataclass(frozen=True)
class NextTier:
    tier: Tier
    points_needed: int


@dataclass(frozen=True)
class NextReward:
    reward: Reward
    points_needed: int


def next_tier_for(card: Card) -> NextTier | None:
    """The lowest tier above the card's lifetime points, and how many more lifetime points reach it."""
    for tier in _tiers_of(card.program):
        if tier.threshold > card.lifetime_points:
            return NextTier(tier=tier, points_needed=tier.threshold - card.lifetime_points)
    return None


def next_reward_for(card: Card) -> NextReward | None:
    """The cheapest available reward the balance cannot afford yet, and how many points are missing."""
    for reward in _available_rewards_of(card.program):
        if reward.points_cost > card.balance:
            return NextReward(reward=reward, points_needed=reward.points_cost - card.balance)
    return None


@dataclass(frozen=True)
class RewardOptions:
    redeemable: list[NextReward]
    almost: list[NextReward]


def reward_options_for(card: Card) -> RewardOptions:
    """What the card can redeem now, and the (up to three) cheapest rewards it cannot afford yet.

    A closed card can redeem nothing, so it is offered nothing; rejoining the program reopens it.
    """
    if not card.is_active:
        return RewardOptions(redeemable=[], almost=[])
    redeemable, almost = [], []
    for reward in _available_rewards_of(card.program):
        if reward.points_cost <= card.balance:
            redeemable.append(NextReward(reward=reward, points_needed=0))
        elif len(almost) < ALMOST_REWARDS:
            almost.append(NextReward(reward=reward, points_needed=reward.points_cost - card.balance))
    return RewardOptions(redeemable=redeemable, almost=almost)


def _tiers_of(program) -> list[Tier]:
    prefetched = getattr(program, "tiers_by_threshold", None)
    return prefetched if prefetched is not None else list(program.tiers.order_by("threshold"))


def _available_rewards_of(program) -> list[Reward]:
    prefetched = getattr(program, "available_rewards", None)
    if prefetched is not None:
        return prefetched
    return list(program.rewards.filter(available_rewards_filter()).order_by("points_cost", "id"))


# History ----------------------------------------------------------------------------------------------

def list_card_history(card: Card) -> QuerySet[LedgerEntry]:
    """A card's ledger entries, newest first, with the purchase (and its store) or the redemption
    (and its reward) each came from."""
    return (
        LedgerEntry.objects.filter(card=card)
        .select_related("purchase__store", "redemption__reward")
        .order_by("-id")
    )


# Coupons ----------------------------------------------------------------------------------------------

def list_coupons(customer: Customer, *, status: str | None = None) -> QuerySet[Redemption]:
    """The customer's coupons (redemptions), newest first, optionally of one status."""
    coupons = (
        Redemption.objects.filter(card__wallet__customer=customer)
        .select_related("reward", "card", "merchant")
        .order_by("-created_at", "-id")
    )
    if status is not None:
        coupons = coupons.filter(status=status)
    return coupons


def get_coupon(customer: Customer, coupon_id: int) -> Redemption:
    """One of the customer's coupons. Raises Redemption.DoesNotExist otherwise."""
    if not 0 < coupon_id <= MAX_ID:
        raise Redemption.DoesNotExist()
    return list_coupons(customer).get(pk=coupon_id)
