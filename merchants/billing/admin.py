"""Admin for billing. Plans and the raw Stripe event log are Tessera's own business (superusers only);
an owner or manager sees their merchant's subscription, read-only: Stripe's webhooks keep it current,
and a hand edit would only be overwritten, or worse, pause or unpause earning without a payment."""
from django.contrib import admin

from core.admin_base import ReadOnlyAdmin, SuperuserOnlyAdmin, SuperuserReadOnlyAdmin
from merchants.models import BillingPlan, MerchantSubscription, StripeEvent


@admin.register(BillingPlan)
class BillingPlanAdmin(SuperuserOnlyAdmin):
    list_display = ("name", "stripe_price_id", "amount", "currency", "interval", "is_active")
    list_filter = ("is_active", "interval")
    search_fields = ("name", "stripe_price_id")

    def has_delete_permission(self, request, obj=None):
        return False  # subscriptions point at plans: retire one with is_active instead


@admin.register(MerchantSubscription)
class MerchantSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "status", "plan", "status_since", "current_period_end", "cancel_at_period_end")
    list_filter = ("status",)
    search_fields = ("merchant__name", "stripe_customer_id", "stripe_subscription_id")
    list_select_related = ("merchant", "plan")
    readonly_fields = ("merchant", "plan", "status", "status_since", "current_period_end", "cancel_at_period_end",
                       "stripe_customer_id", "stripe_subscription_id", "last_event_created", "updated_at")


@admin.register(StripeEvent)
class StripeEventAdmin(SuperuserReadOnlyAdmin):
    list_display = ("event_id", "event_type", "merchant", "outcome", "created", "received_at")
    list_filter = ("event_type",)
    search_fields = ("event_id", "outcome", "merchant__name")
    list_select_related = ("merchant",)
