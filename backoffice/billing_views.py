"""The billing page under /admin/reports/billing/: a merchant's Tessera subscription, the plans on
offer, and for owners the way to Stripe Checkout and the billing portal.

Owners and managers see the status; only owners (and superusers) may subscribe or open the portal,
since that is where the merchant's card and invoices are. The merchant comes from the request and
must be one of the user's; any other id is a 404, never data. Both actions are POSTs under the
admin's CSRF protection and answer 303 to Stripe's hosted page.
"""
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from backoffice.merchant_choice import chosen_merchant, reportable_merchants
from core.errors import TesseraError
from core.money import to_major_units
from core.tenancy import OWNER, changeable_merchant_ids
from merchants.billing.policy import earning_paused_reason, grace_ends_at
from merchants.billing.services import billing_portal_url, get_subscription, start_checkout
from merchants.models import BillingPlan, Merchant


def _plans_on_offer() -> list[BillingPlan]:
    plans = list(BillingPlan.objects.filter(is_active=True))
    for plan in plans:
        plan.price_label = f"{to_major_units(plan.amount, plan.currency)} {plan.currency} per {plan.interval}"
    return plans


def _can_manage(user, merchant: Merchant) -> bool:
    owned = changeable_merchant_ids(user, (OWNER,))
    return owned is None or merchant.pk in owned


def _billing_page_url(request, merchant: Merchant) -> str:
    return request.build_absolute_uri(f"{reverse('backoffice:billing')}?merchant={merchant.pk}")


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@require_GET
def _billing(request):
    merchant = chosen_merchant(request.user, request.GET.get("merchant"))
    subscription = get_subscription(merchant) if merchant else None
    context = {
        **admin.site.each_context(request),
        "title": "Billing",
        "merchants": reportable_merchants(request.user),
        "merchant": merchant,
        "subscription": subscription,
        "plans": _plans_on_offer(),
        "can_manage": bool(merchant) and _can_manage(request.user, merchant),
        "billing_configured": bool(settings.STRIPE_BILLING["SECRET_KEY"]),
        "billing_enabled": settings.TESSERA_BILLING_ENABLED,
        "paused_reason": earning_paused_reason(merchant) if merchant else None,
        "grace_ends_at": grace_ends_at(subscription),
        "checkout": request.GET.get("checkout", ""),
    }
    return render(request, "backoffice/billing.html", context)


def _owned_merchant(request) -> Merchant:
    merchant = chosen_merchant(request.user, request.POST.get("merchant"))
    if merchant is None:
        raise Http404("No such merchant.")
    if not _can_manage(request.user, merchant):
        raise PermissionDenied("Only the merchant's owner can manage billing.")
    return merchant


@require_POST
def _checkout(request):
    merchant = _owned_merchant(request)
    try:
        plan = BillingPlan.objects.get(pk=int(request.POST.get("plan", "")), is_active=True)
    except (ValueError, BillingPlan.DoesNotExist):
        raise Http404("No such plan.") from None
    back = _billing_page_url(request, merchant)
    try:
        return _see_other(start_checkout(merchant, plan, return_url=back, email=request.user.email or ""))
    except TesseraError as error:
        messages.error(request, error.message)
        return _see_other(back)


@require_POST
def _portal(request):
    merchant = _owned_merchant(request)
    back = _billing_page_url(request, merchant)
    try:
        return _see_other(billing_portal_url(merchant, return_url=back))
    except TesseraError as error:
        messages.error(request, error.message)
        return _see_other(back)


billing = admin.site.admin_view(_billing)
checkout = admin.site.admin_view(_checkout)
portal = admin.site.admin_view(_portal)
