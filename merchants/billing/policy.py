"""Whether a merchant's customers may earn points, given the merchant's Tessera subscription.

Runs before every purchase earns (wallet.services.earning and .unmatched), so it costs at most one
indexed read, and none when billing is off. Only earning pauses: a lapsed subscription never takes
points from customers, and redeeming what they hold keeps working.

A past-due subscription keeps earning for TESSERA_BILLING_GRACE_DAYS after it became past due: Stripe
is retrying the card, and a merchant should not lose a day at the counter over an expired card.
"""
import datetime as dt

from django.conf import settings
from django.utils import timezone

from merchants.models import Merchant, MerchantSubscription

Status = MerchantSubscription.Status
EARNING_STATUSES = frozenset({Status.ACTIVE, Status.TRIALING})

_WHY = {
    Status.NONE: "has no Tessera subscription yet",
    Status.INCOMPLETE: "has a Tessera subscription whose first payment has not gone through",
    Status.INCOMPLETE_EXPIRED: "has a Tessera subscription whose first payment never went through",
    Status.PAST_DUE: "has an overdue payment for its Tessera subscription",
    Status.UNPAID: "has an unpaid Tessera subscription",
    Status.CANCELED: "has cancelled its Tessera subscription",
    Status.PAUSED: "has paused its Tessera subscription",
}


def earning_paused_reason(merchant: Merchant) -> str | None:
    """None when earning is allowed; else a sentence a cashier can read out saying why it is paused."""
    if not settings.TESSERA_BILLING_ENABLED:
        return None
    row = MerchantSubscription.objects.filter(merchant_id=merchant.pk).values_list("status", "status_since").first()
    status, since = row or (Status.NONE, None)
    if status in EARNING_STATUSES:
        return None
    if status == Status.PAST_DUE and _within_grace(since):
        return None
    why = _WHY.get(status, "has no active Tessera subscription")
    return (
        f"Earning points is paused: {merchant.name} {why}. Customers can still redeem the points they "
        "already have. The owner can fix this under Billing in the Tessera admin."
    )


def grace_ends_at(subscription: MerchantSubscription | None) -> dt.datetime | None:
    """When a past-due subscription stops earning, for the billing page; None if it is not past due."""
    if subscription is None or subscription.status != Status.PAST_DUE or subscription.status_since is None:
        return None
    return subscription.status_since + dt.timedelta(days=settings.TESSERA_BILLING_GRACE_DAYS)


def _within_grace(since: dt.datetime | None) -> bool:
    # No recorded start means we cannot say a grace period is running: treat it as over.
    if since is None:
        return False
    return timezone.now() < since + dt.timedelta(days=settings.TESSERA_BILLING_GRACE_DAYS)
