"""The billing page at /admin/reports/billing/ and the billing admin, as owners, managers, other
merchants' staff and Tessera's superusers see them."""
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from merchants.models import MerchantSubscription, StaffMember
from merchants.services import grant_staff_access
from tests.billing.helpers import event, start_subscribing, subscription
from tests.factories import make_merchant

pytestmark = pytest.mark.django_db

PAGE, CHECKOUT, PORTAL = "/admin/reports/billing/", "/admin/reports/billing/checkout/", "/admin/reports/billing/portal/"


def staff_client(merchants_and_roles, *, name="staff") -> Client:
    user = get_user_model().objects.create_user(username=name, email=f"{name}@cafe.example", password="x",
                                                is_staff=True)
    for merchant, role in merchants_and_roles:
        grant_staff_access(merchant, user, role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner(world):
    return staff_client([(world.merchant, StaffMember.Role.OWNER)], name="owner")


@pytest.fixture
def manager(world):
    return staff_client([(world.merchant, StaffMember.Role.MANAGER)], name="manager")


def test_an_owner_sees_the_status_and_plans_and_can_subscribe(owner, world, stripe_billing, plan):
    page = owner.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert world.merchant.name in html and "Not subscribed" in html
    assert "Starter" in html and "29.00 EUR per month" in html
    assert 'value="Subscribe"' in html and "Earning points is paused" in html

    response = owner.post(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk})

    [session] = stripe_billing.checkout_sessions.values()
    assert response.status_code == 303 and response["Location"] == session["url"]
    back = urlsplit(session["success_url"])
    assert back.path == PAGE and parse_qs(back.query) == {"merchant": [str(world.merchant.pk)], "checkout": ["success"]}
    [customer] = stripe_billing.customers.values()
    assert customer["email"] == "owner@cafe.example"


def test_an_active_owner_manages_billing_in_the_portal(owner, world, stripe_billing, plan):
    from merchants.billing.services import apply_stripe_event

    customer_id = start_subscribing(world.merchant, plan)
    apply_stripe_event(event("customer.subscription.created", subscription(customer=customer_id, status="active")))
    html = owner.get(PAGE).content.decode()
    assert "Active" in html and 'value="Manage billing"' in html and "Renews on" in html
    assert "Earning points is paused" not in html

    response = owner.post(PORTAL, {"merchant": world.merchant.pk})

    [portal] = stripe_billing.portal_sessions.values()
    assert response.status_code == 303 and response["Location"] == portal["url"]
    assert portal["customer"] == customer_id and urlsplit(portal["return_url"]).path == PAGE


def test_a_manager_sees_the_status_but_cannot_subscribe(manager, world, stripe_billing, plan):
    html = manager.get(PAGE).content.decode()
    assert "Not subscribed" in html and "Starter" in html
    assert 'value="Subscribe"' not in html and "Manage billing" not in html

    assert manager.post(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk}).status_code == 403
    assert manager.post(PORTAL, {"merchant": world.merchant.pk}).status_code == 403
    assert stripe_billing.requests == []


def test_another_merchants_billing_is_a_404(owner, world, stripe_billing, plan):
    theirs = make_merchant(name="Someone Else's Bakery")
    assert owner.get(PAGE, {"merchant": theirs.pk}).status_code == 404
    assert owner.get(PAGE, {"merchant": "not-a-number"}).status_code == 404
    assert owner.post(CHECKOUT, {"merchant": theirs.pk, "plan": plan.pk}).status_code == 404
    assert owner.post(PORTAL, {"merchant": theirs.pk}).status_code == 404
    assert stripe_billing.requests == [] and not MerchantSubscription.objects.filter(merchant=theirs).exists()


def test_staff_of_several_merchants_choose_among_theirs_only(world, stripe_billing, plan):
    second, stranger = make_merchant(name="Second Café"), make_merchant(name="Stranger Shop")
    client = staff_client([(world.merchant, "owner"), (second, "manager")])
    html = client.get(PAGE, {"merchant": second.pk}).content.decode()
    assert f'<option value="{world.merchant.pk}"' in html and f'<option value="{second.pk}" selected' in html
    assert stranger.name not in html
    assert 'value="Subscribe"' not in html  # a manager there


def test_subscribing_needs_the_csrf_token_and_a_post(world, stripe_billing, plan):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.create_user(username="o2", password="x", is_staff=True))
    grant_staff_access(world.merchant, get_user_model().objects.get(username="o2"), "owner")
    assert strict.post(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk}).status_code == 403
    assert strict.get(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk}).status_code == 405
    assert stripe_billing.requests == []


def test_people_outside_the_admin_are_sent_to_log_in(world, stripe_billing, plan):
    cashier = staff_client([(world.merchant, "cashier")], name="cashier")
    for client in (Client(), cashier):
        response = client.get(PAGE)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
        assert client.post(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk}).status_code == 302
    assert stripe_billing.requests == []


def test_stripe_being_down_brings_the_owner_back_with_a_message(owner, world, stripe_billing, plan):
    stripe_billing.fail(503)
    response = owner.post(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk}, follow=True)
    assert response.redirect_chain == [(f"http://testserver{PAGE}?merchant={world.merchant.pk}", 303)]
    assert "Stripe could not create the billing customer" in response.content.decode()


def test_a_retired_plan_cannot_be_bought(owner, world, stripe_billing, plan):
    plan.is_active = False
    plan.save()
    assert "Starter" not in owner.get(PAGE).content.decode()
    assert owner.post(CHECKOUT, {"merchant": world.merchant.pk, "plan": plan.pk}).status_code == 404
    assert stripe_billing.requests == []


# The admin ---------------------------------------------------------------------------------------

def test_an_owner_sees_only_their_subscription_read_only_and_not_plans_or_events(owner, world, stripe_billing):
    mine = MerchantSubscription.objects.create(merchant=world.merchant, status="active")
    theirs = MerchantSubscription.objects.create(merchant=make_merchant(name="Other Merchant"), status="canceled")

    listing = owner.get("/admin/merchants/merchantsubscription/")
    assert listing.status_code == 200
    assert world.merchant.name in listing.content.decode() and "Other Merchant" not in listing.content.decode()
    detail = owner.get(f"/admin/merchants/merchantsubscription/{mine.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    owner.post(f"/admin/merchants/merchantsubscription/{mine.pk}/change/", {"status": "canceled"})
    assert MerchantSubscription.objects.get(pk=mine.pk).status == "active"
    assert owner.get(f"/admin/merchants/merchantsubscription/{theirs.pk}/change/").status_code in (302, 404)
    assert owner.get("/admin/merchants/billingplan/").status_code == 403
    assert owner.get("/admin/merchants/stripeevent/").status_code == 403


def test_a_superuser_sees_every_subscription_and_manages_plans(world, stripe_billing):
    admin_user = get_user_model().objects.create_superuser(username="root", password="x", email="root@tessera.example")
    client = Client()
    client.force_login(admin_user)
    MerchantSubscription.objects.create(merchant=world.merchant, status="active")
    MerchantSubscription.objects.create(merchant=make_merchant(name="Other Merchant"), status="canceled")
    listing = client.get("/admin/merchants/merchantsubscription/").content.decode()
    assert world.merchant.name in listing and "Other Merchant" in listing
    assert client.get("/admin/merchants/billingplan/add/").status_code == 200
    assert client.get("/admin/merchants/stripeevent/").status_code == 200
