"""Starting Checkout and opening the billing portal create the right objects in (a fake of) Tessera's
Stripe account: the merchant's customer once, tagged with the merchant, and sessions that come back
to the billing page."""
from urllib.parse import parse_qs, urlsplit

import pytest

from merchants.billing.client import BillingApiError, BillingNotConfigured, CustomerDetails, billing_client
from merchants.billing.services import (
    AlreadySubscribed,
    NoBillingAccount,
    apply_stripe_event,
    billing_portal_url,
    start_checkout,
)
from merchants.models import MerchantSubscription
from tests.billing.helpers import SECRET_KEY, STARTER_PRICE, event, subscription
from tests.factories import make_merchant

pytestmark = pytest.mark.django_db

BILLING_PAGE = "https://tessera.example/admin/reports/billing/?merchant=7"


def test_checkout_creates_a_customer_for_the_merchant_and_a_subscription_session(world, stripe_billing, plan):
    url = start_checkout(world.merchant, plan, return_url=BILLING_PAGE, email="owner@cafe.example")

    [customer_call] = stripe_billing.posts("/v1/customers")
    assert customer_call["headers"]["Authorization"] == f"Bearer {SECRET_KEY}"
    assert customer_call["params"] == {"name": world.merchant.name, "email": "owner@cafe.example",
                                       "metadata": {"tessera_merchant_id": str(world.merchant.pk)}}
    assert customer_call["headers"]["Idempotency-Key"].startswith(f"tessera-customer-{world.merchant.pk}-")
    [customer_id] = stripe_billing.customers
    assert MerchantSubscription.objects.get(merchant=world.merchant).stripe_customer_id == customer_id

    [session_call] = stripe_billing.posts("/v1/checkout/sessions")
    params = session_call["params"]
    assert params["mode"] == "subscription" and params["customer"] == customer_id
    assert params["line_items"] == [{"price": STARTER_PRICE, "quantity": "1"}]
    assert params["client_reference_id"] == str(world.merchant.pk)
    assert params["subscription_data"] == {"metadata": {"tessera_merchant_id": str(world.merchant.pk)}}
    success, cancel = urlsplit(params["success_url"]), urlsplit(params["cancel_url"])
    assert success.path == cancel.path == "/admin/reports/billing/"
    assert parse_qs(success.query) == {"merchant": ["7"], "checkout": ["success"]}
    assert parse_qs(cancel.query) == {"merchant": ["7"], "checkout": ["cancelled"]}
    [session] = stripe_billing.checkout_sessions.values()
    assert url == session["url"] and url.startswith("https://checkout.stripe.com/")


def test_a_second_checkout_and_the_portal_reuse_the_merchants_customer(world, stripe_billing, plan):
    start_checkout(world.merchant, plan, return_url=BILLING_PAGE)  # abandoned on Stripe's page
    start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    portal = billing_portal_url(world.merchant, return_url=BILLING_PAGE)

    assert len(stripe_billing.posts("/v1/customers")) == 1
    [customer_id] = stripe_billing.customers
    sessions = stripe_billing.posts("/v1/checkout/sessions")
    assert [call["params"]["customer"] for call in sessions] == [customer_id, customer_id]
    [portal_call] = stripe_billing.posts("/v1/billing_portal/sessions")
    assert portal_call["params"] == {"customer": customer_id, "return_url": BILLING_PAGE}
    [portal_session] = stripe_billing.portal_sessions.values()
    assert portal == portal_session["url"] and portal.startswith("https://billing.stripe.com/")


def test_a_customer_deleted_in_stripes_dashboard_is_replaced_at_the_next_checkout(world, stripe_billing, plan):
    start_checkout(world.merchant, plan, return_url=BILLING_PAGE)  # abandoned
    [gone] = stripe_billing.customers
    del stripe_billing.customers[gone]  # an admin deleted it in Stripe's dashboard

    url = start_checkout(world.merchant, plan, return_url=BILLING_PAGE)

    [fresh] = stripe_billing.customers
    assert fresh != gone
    assert stripe_billing.customers[fresh]["metadata"] == {"tessera_merchant_id": str(world.merchant.pk)}
    assert MerchantSubscription.objects.get(merchant=world.merchant).stripe_customer_id == fresh
    assert stripe_billing.posts("/v1/checkout/sessions")[-1]["params"]["customer"] == fresh
    assert url.startswith("https://checkout.stripe.com/")


def test_the_portal_of_a_deleted_customer_asks_to_subscribe_again(world, stripe_billing, plan):
    start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    stripe_billing.customers.clear()
    with pytest.raises(NoBillingAccount):
        billing_portal_url(world.merchant, return_url=BILLING_PAGE)
    assert MerchantSubscription.objects.get(merchant=world.merchant).stripe_customer_id == ""


def test_a_lost_answer_retried_with_the_merchants_key_gets_the_same_customer(world, stripe_billing):
    details = CustomerDetails(merchant_id=world.merchant.pk, name=world.merchant.name)
    first = billing_client().create_customer(details)
    again = billing_client().create_customer(details)  # as if the first answer never reached us
    other = billing_client().create_customer(CustomerDetails(merchant_id=make_merchant().pk, name="Other"))

    assert first == again != other
    assert len(stripe_billing.customers) == 2
    assert stripe_billing.requests[1]["headers"]["Idempotency-Key"] == stripe_billing.requests[0]["headers"][
        "Idempotency-Key"]


def test_a_merchant_with_a_live_subscription_is_sent_to_the_portal_not_checkout(world, stripe_billing, plan):
    start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    [customer_id] = stripe_billing.customers
    apply_stripe_event(event("customer.subscription.created", subscription(customer=customer_id, status="active")))
    calls = len(stripe_billing.requests)

    with pytest.raises(AlreadySubscribed) as refused:
        start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    assert refused.value.http_status == 409 and "billing portal" in refused.value.message
    assert len(stripe_billing.requests) == calls


def test_the_portal_needs_a_customer_first(world, stripe_billing):
    with pytest.raises(NoBillingAccount):
        billing_portal_url(world.merchant, return_url=BILLING_PAGE)
    assert stripe_billing.requests == []


def test_stripe_refusing_gives_a_readable_error_and_stores_nothing(world, stripe_billing, plan):
    stripe_billing.fail(500)
    with pytest.raises(BillingApiError) as failed:
        start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    assert failed.value.message == "Stripe could not create the billing customer. Please try again in a minute."
    assert SECRET_KEY not in failed.value.message
    assert MerchantSubscription.objects.get(merchant=world.merchant).stripe_customer_id == ""


def test_a_wrong_key_is_an_error_not_a_crash(world, stripe_billing, plan, settings):
    settings.STRIPE_BILLING = {**settings.STRIPE_BILLING, "SECRET_KEY": "sk_test_not_the_right_one"}
    with pytest.raises(BillingApiError):
        start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    assert stripe_billing.customers == {}


def test_an_unknown_price_is_refused_by_stripe(world, stripe_billing, plan):
    stripe_billing.prices.clear()
    with pytest.raises(BillingApiError) as failed:
        start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    assert failed.value.message.startswith("Stripe could not start Checkout.")


def test_without_a_secret_key_billing_is_not_configured(world, plan, settings):
    settings.STRIPE_BILLING = {"SECRET_KEY": "", "WEBHOOK_SECRET": "", "API_BASE": "https://api.stripe.com"}
    with pytest.raises(BillingNotConfigured) as refused:
        start_checkout(world.merchant, plan, return_url=BILLING_PAGE)
    assert refused.value.http_status == 503
