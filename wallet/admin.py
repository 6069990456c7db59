"""Minimal wallet admin. Balances, entries and events are read-only here: money changes only
through the services (the merchant admin issue adds the adjustment form that calls them)."""
from django.contrib import admin

from core.admin_base import MerchantScopedAdmin, ReadOnlyAdmin
from wallet.models import Card, Customer, DomainEvent, IdempotencyRecord, LedgerEntry, Purchase, Redemption, Wallet


@admin.register(Customer)
class CustomerAdmin(MerchantScopedAdmin):
    merchant_lookup = "wallet__cards__merchant"
    list_display = ("id", "user", "time_zone", "locale", "created_at")
    search_fields = ("user__username", "user__email", "user__phone")
    raw_id_fields = ("user",)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    merchant_lookup = "cards__merchant"
    list_display = ("id", "customer", "created_at")


@admin.register(Card)
class CardAdmin(MerchantScopedAdmin):
    list_display = ("number", "merchant", "program", "status", "balance", "lifetime_points", "tier")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "status")
    search_fields = ("number",)
    readonly_fields = ("wallet", "program", "merchant", "number", "balance", "lifetime_points", "tier",
                       "created_at", "closed_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "card", "kind", "delta", "balance_after", "source", "occurred_at", "reason")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "kind", "source")
    search_fields = ("card__number", "reason")
    list_select_related = ("card",)


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "merchant", "card", "amount", "currency", "points_earned", "status", "occurred_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "status")
    search_fields = ("external_id", "card__number")


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ("coupon_code", "merchant", "card", "reward", "points", "status", "expires_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "status")
    search_fields = ("coupon_code", "card__number")


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "merchant", "customer_id", "occurred_at")
    list_filter = ("event_type",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "merchant", "operation", "created_at")
    list_filter = ("operation",)
