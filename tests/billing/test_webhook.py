"""/hooks/stripe/: Stripe's billing events, signed as Stripe signs them, keep each merchant's
subscription current; anything unsigned, stale, oversize or repeated changes nothing."""
import datetime as dt
import json
import time

import pytest

from merchants.billing.services import DUPLICATE, apply_stripe_event
from merchants.billing.webhook import MAX_BODY_BYTES
from merchants.models import MerchantSubscription, StripeEvent
from tests.billing.helpers import (
    checkout_session,
    event,
    invoice,
    post_event,
    start_subscribing,
    stripe_signature,
    subscription,
    subscription_state,
)
from tests.factories import make_merchant

pytestmark = pytest.mark.django_db

NOW = int(time.time())


@pytest.fixture
def customer(world, stripe_billing, plan):
    return start_subscribing(world.merchant, plan)


def row(world) -> MerchantSubscription:
    return MerchantSubscription.objects.get(merchant=world.merchant)


def at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def assert_refused(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response.json() == {"error": {"code": code, "message": response.json()["error"]["message"], "fields": {}}}


def test_a_subscription_moves_through_active_past_due_and_cancelled(client, world, customer, plan):
    period_end = NOW + 30 * 86400
    created = post_event(client, event("customer.subscription.created",
                                       subscription(customer=customer, status="active", period_end=period_end),
                                       created=NOW - 300))
    assert created.status_code == 200 and created.json() == {"received": True, "duplicate": False}
    subscribed = row(world)
    assert (subscribed.status, subscribed.plan, subscribed.stripe_subscription_id) == ("active", plan,
                                                                                      "sub_1QbTesseraStarter")
    assert subscribed.status_since == at(NOW - 300) and subscribed.current_period_end == at(period_end)

    post_event(client, event("invoice.payment_failed", invoice(customer=customer, paid=False, attempt=1,
                                                              next_attempt=NOW + 3 * 86400), created=NOW - 200))
    assert row(world).status == "active"  # the invoice is recorded; the status comes with the subscription
    failed = StripeEvent.objects.get(event_type="invoice.payment_failed")
    assert failed.merchant == world.merchant and failed.outcome.startswith("payment failed for invoice in_")

    post_event(client, event("customer.subscription.updated", subscription(customer=customer, status="past_due"),
                             created=NOW - 200))
    assert (row(world).status, row(world).status_since) == ("past_due", at(NOW - 200))

    post_event(client, event("customer.subscription.deleted", subscription(customer=customer, status="canceled"),
                             created=NOW - 100))
    assert (row(world).status, row(world).status_since) == ("canceled", at(NOW - 100))
    assert list(StripeEvent.objects.order_by("received_at", "pk").values_list("outcome", flat=True)) == [
        "sub_1QbTesseraStarter none -> active", failed.outcome, "sub_1QbTesseraStarter active -> past_due",
        "sub_1QbTesseraStarter past_due -> canceled",
    ]


def test_a_renewal_moves_the_period_end_and_a_pending_cancellation_shows(client, world, customer):
    post_event(client, event("customer.subscription.created", subscription(customer=customer, status="active"),
                             created=NOW - 60))
    since = row(world).status_since
    renewed = NOW + 60 * 86400
    post_event(client, event("customer.subscription.updated",
                             subscription(customer=customer, status="active", period_end=renewed,
                                          cancel_at_period_end=True, period_on_items=False), created=NOW))
    updated = row(world)
    assert updated.current_period_end == at(renewed) and updated.cancel_at_period_end is True
    assert updated.status_since == since  # unchanged status keeps its start


@pytest.mark.parametrize("signature", [
    pytest.param("wrong", id="bad-signature"),
    pytest.param("stale", id="stale-timestamp"),
    pytest.param("future", id="future-timestamp"),
    pytest.param("", id="missing-header"),
    pytest.param("t=abc,v1=zzz", id="garbled-header"),
])
def test_an_unverifiable_event_is_refused_and_changes_nothing(client, world, customer, signature):
    before = subscription_state(world.merchant)
    stripe_event = event("customer.subscription.created", subscription(customer=customer, status="active"))
    body = json.dumps(stripe_event, indent=2).encode()
    headers = {
        "wrong": stripe_signature(body, secret="whsec_someone_elses_secret_000000"),
        "stale": stripe_signature(body, at=int(time.time()) - 301),
        "future": stripe_signature(body, at=int(time.time()) + 600),
    }
    response = post_event(client, stripe_event, signature=headers.get(signature, signature))

    assert_refused(response, 400, "signature_missing" if signature == "" else "signature_invalid")
    assert subscription_state(world.merchant) == before and StripeEvent.objects.count() == 0


@pytest.mark.parametrize("downgrade", [
    pytest.param(lambda signed: signed.replace(",v1=", ",v0="), id="only-v0"),
    pytest.param(lambda signed: signed.replace(",v1=", ",v1=" + "0" * 64 + ",v0="), id="v0-beside-a-wrong-v1"),
])
def test_a_signature_under_the_old_v0_scheme_is_refused_even_with_the_right_secret(client, world, customer,
                                                                                     downgrade):
    """Stripe's `v0` entries are test-mode leftovers; only `v1` is checked, so a correct HMAC under v0
    (the right secret, a fresh timestamp) must not open the door."""
    before = subscription_state(world.merchant)
    stripe_event = event("customer.subscription.created", subscription(customer=customer, status="active"))
    body = json.dumps(stripe_event, indent=2).encode()

    response = post_event(client, stripe_event, signature=downgrade(stripe_signature(body)))

    assert_refused(response, 400, "signature_invalid")
    assert subscription_state(world.merchant) == before and StripeEvent.objects.count() == 0


def test_a_body_that_was_tampered_with_after_signing_is_refused(client, world, customer):
    genuine = event("customer.subscription.created", subscription(customer=customer, status="past_due"))
    signature = stripe_signature(json.dumps(genuine, indent=2).encode())
    genuine["data"]["object"]["status"] = "active"
    assert_refused(post_event(client, genuine, signature=signature), 400, "signature_invalid")
    assert row(world).status == "none"


def test_a_duplicate_delivery_is_acknowledged_and_changes_nothing(client, world, customer):
    delivery = event("customer.subscription.created", subscription(customer=customer, status="active"),
                     created=NOW - 100)
    post_event(client, delivery)
    before = subscription_state(world.merchant)

    again = post_event(client, delivery)

    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}
    assert subscription_state(world.merchant) == before and StripeEvent.objects.count() == 1


def test_an_older_event_arriving_after_a_newer_one_does_not_move_the_status_back(client, world, customer):
    post_event(client, event("customer.subscription.updated", subscription(customer=customer, status="past_due"),
                             created=NOW - 60))
    late = post_event(client, event("customer.subscription.updated", subscription(customer=customer, status="active"),
                                    created=NOW - 120))
    assert late.status_code == 200
    assert (row(world).status, row(world).status_since) == ("past_due", at(NOW - 60))
    assert StripeEvent.objects.order_by("-pk").first().outcome == (
        "ignored: older than the last event applied to this subscription")


def test_a_cancelled_subscription_is_not_revived_by_an_update_from_the_same_second(client, world, customer):
    post_event(client, event("customer.subscription.deleted", subscription(customer=customer, status="canceled"),
                             created=NOW))
    post_event(client, event("customer.subscription.updated", subscription(customer=customer, status="active"),
                             created=NOW))
    assert row(world).status == "canceled"


def test_a_first_incomplete_status_arriving_after_active_is_ignored(client, world, customer):
    post_event(client, event("customer.subscription.updated", subscription(customer=customer, status="active"),
                             created=NOW))
    post_event(client, event("customer.subscription.created", subscription(customer=customer, status="incomplete"),
                             created=NOW))
    assert row(world).status == "active"


def test_subscribing_again_after_cancelling_takes_over_and_the_old_ones_late_events_do_not(client, world, customer):
    post_event(client, event("customer.subscription.deleted", subscription(customer=customer, status="canceled"),
                             created=NOW - 500))
    post_event(client, event("customer.subscription.created",
                             subscription(customer=customer, status="active", sub_id="sub_1QbSecondOne"),
                             created=NOW - 400))
    assert (row(world).status, row(world).stripe_subscription_id) == ("active", "sub_1QbSecondOne")

    post_event(client, event("customer.subscription.deleted", subscription(customer=customer, status="canceled"),
                             event_id="evt_1QbOldOneRedelivered", created=NOW - 450))
    post_event(client, event("customer.subscription.updated", subscription(customer=customer, status="active"),
                             created=NOW - 600))  # the old one's news from before it was cancelled, late
    assert (row(world).status, row(world).stripe_subscription_id) == ("active", "sub_1QbSecondOne")

    post_event(client, event("customer.subscription.deleted",
                             subscription(customer=customer, status="canceled", sub_id="sub_1QbSecondOne"),
                             created=NOW - 300))
    assert row(world).status == "canceled"  # so the second one's end still pauses the merchant


def test_checkout_completed_links_a_merchant_whose_customer_was_never_stored(client, stripe_billing, plan):
    merchant = make_merchant()
    post_event(client, event("checkout.session.completed",
                             checkout_session(customer="cus_1QbNotYetLinked", merchant_id=merchant.pk)))
    post_event(client, event("customer.subscription.created",
                             subscription(customer="cus_1QbNotYetLinked", status="active")))

    linked = MerchantSubscription.objects.get(merchant=merchant)
    assert (linked.stripe_customer_id, linked.stripe_subscription_id, linked.status) == (
        "cus_1QbNotYetLinked", "sub_1QbTesseraStarter", "active")


def test_metadata_cannot_take_over_a_merchant_linked_to_another_customer(client, world, customer):
    response = post_event(client, event("customer.subscription.created", subscription(
        customer="cus_1QbSomeoneElse", status="canceled", merchant_id=world.merchant.pk)))
    assert response.status_code == 200
    assert row(world).stripe_customer_id == customer and row(world).status == "none"


def test_an_unknown_customers_events_are_recorded_not_refused(client, stripe_billing):
    response = post_event(client, event("customer.subscription.updated",
                                        subscription(customer="cus_1QbNobodyWeKnow", status="active")))
    assert response.status_code == 200
    recorded = StripeEvent.objects.get()
    assert recorded.merchant is None and recorded.outcome == "unknown customer cus_1QbNobodyWeKnow"
    assert MerchantSubscription.objects.count() == 0


def test_an_event_type_tessera_does_not_use_is_acknowledged(client, stripe_billing):
    response = post_event(client, event("customer.created", {"id": "cus_1QbX", "object": "customer"}))
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == "ignored: Tessera does not use this event type"


def test_an_oversize_body_is_refused_before_any_signature_work(client, stripe_billing):
    body = b'{"padding": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = client.generic("POST", "/hooks/stripe/", body, content_type="application/json",
                              HTTP_STRIPE_SIGNATURE="t=1,v1=not-even-checked")
    assert_refused(response, 413, "payload_too_large")
    assert StripeEvent.objects.count() == 0


def test_a_signed_body_that_is_not_an_event_is_refused(client, stripe_billing):
    body = b"not json"
    response = client.generic("POST", "/hooks/stripe/", body, content_type="application/json",
                              HTTP_STRIPE_SIGNATURE=stripe_signature(body))
    assert_refused(response, 400, "malformed_event")
    no_object = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "created": NOW}).encode()
    response = client.generic("POST", "/hooks/stripe/", no_object, content_type="application/json",
                              HTTP_STRIPE_SIGNATURE=stripe_signature(no_object))
    assert_refused(response, 400, "malformed_event")
    assert StripeEvent.objects.count() == 0


def test_only_post_and_only_when_configured(client, settings, stripe_billing):
    response = client.get("/hooks/stripe/")
    assert_refused(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
    settings.STRIPE_BILLING = {**settings.STRIPE_BILLING, "WEBHOOK_SECRET": ""}
    unconfigured = post_event(client, event("invoice.paid", invoice(customer="cus_1", paid=True)))
    assert_refused(unconfigured, 503, "billing_not_configured")
    assert StripeEvent.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_eight_times_at_once_is_applied_once(stripe_billing, plan):
    from tests.wallet.test_concurrency import run_together

    merchant = make_merchant()
    customer_id = start_subscribing(merchant, plan)
    delivery = event("customer.subscription.created", subscription(customer=customer_id, status="past_due"))

    outcomes = run_together(8, lambda index: apply_stripe_event(delivery))

    assert outcomes.count(DUPLICATE) == 7
    assert outcomes.count("sub_1QbTesseraStarter none -> past_due") == 1
    assert StripeEvent.objects.filter(event_id=delivery["id"]).count() == 1
    assert MerchantSubscription.objects.get(merchant=merchant).status == "past_due"
