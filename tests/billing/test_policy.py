"""The rule behind "earning paused", status by status, and what it costs on every purchase."""
import datetime as dt

import pytest
from django.utils import timezone

from merchants.billing.policy import earning_paused_reason, grace_ends_at
from merchants.models import MerchantSubscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def enforced(settings):
    settings.TESSERA_BILLING_ENABLED = True
    settings.TESSERA_BILLING_GRACE_DAYS = 7


def with_status(merchant, status, *, since=None) -> MerchantSubscription:
    return MerchantSubscription.objects.create(merchant=merchant, status=status, status_since=since or timezone.now())


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_a_paying_merchant_earns(world, enforced, status):
    with_status(world.merchant, status)
    assert earning_paused_reason(world.merchant) is None


@pytest.mark.parametrize("status, why", [
    ("none", "has no Tessera subscription yet"),
    ("incomplete", "first payment has not gone through"),
    ("incomplete_expired", "first payment never went through"),
    ("unpaid", "has an unpaid Tessera subscription"),
    ("canceled", "has cancelled its Tessera subscription"),
    ("paused", "has paused its Tessera subscription"),
])
def test_a_merchant_without_a_paying_subscription_is_paused_and_told_why(world, enforced, status, why):
    with_status(world.merchant, status)
    reason = earning_paused_reason(world.merchant)
    assert reason.startswith(f"Earning points is paused: {world.merchant.name} ")
    assert why in reason and "Customers can still redeem the points they already have." in reason


def test_past_due_keeps_earning_for_the_grace_days_then_pauses(world, enforced, settings):
    now = timezone.now()
    row = with_status(world.merchant, "past_due", since=now - dt.timedelta(days=7) + dt.timedelta(minutes=1))
    assert earning_paused_reason(world.merchant) is None
    assert grace_ends_at(row) == row.status_since + dt.timedelta(days=7)

    row.status_since = now - dt.timedelta(days=7, minutes=1)
    row.save()
    assert "overdue payment" in earning_paused_reason(world.merchant)

    settings.TESSERA_BILLING_GRACE_DAYS = 0
    row.status_since = now
    row.save()
    assert earning_paused_reason(world.merchant) is not None


def test_a_merchant_with_no_subscription_row_is_paused(world, enforced):
    assert "has no Tessera subscription yet" in earning_paused_reason(world.merchant)


def test_billing_disabled_never_pauses_and_costs_no_query(world, settings, django_assert_num_queries):
    settings.TESSERA_BILLING_ENABLED = False
    with_status(world.merchant, "canceled")
    with django_assert_num_queries(0):
        assert earning_paused_reason(world.merchant) is None


def test_deciding_costs_one_query(world, enforced, django_assert_num_queries):
    with_status(world.merchant, "canceled")
    with django_assert_num_queries(1):
        assert earning_paused_reason(world.merchant) is not None
