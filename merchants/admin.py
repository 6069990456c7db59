"""Admin for the tenant's models, scoped per merchant. Staff get view access for now: editing with
scoped choices comes with the merchant admin issue."""
from django.contrib import admin

from core.admin_base import MerchantScopedAdmin
from merchants.models import Merchant, Program, Reward, StaffMember, Store, Tier


class StoreInline(admin.TabularInline):
    model = Store
    extra = 0


@admin.register(Merchant)
class MerchantAdmin(MerchantScopedAdmin):
    merchant_lookup = "id"
    list_display = ("name", "slug", "currency", "time_zone", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [StoreInline]


@admin.register(Store)
class StoreAdmin(MerchantScopedAdmin):
    list_display = ("name", "merchant", "city", "time_zone", "is_active")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "city")


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0


class RewardInline(admin.TabularInline):
    model = Reward
    extra = 0


@admin.register(Program)
class ProgramAdmin(MerchantScopedAdmin):
    list_display = ("name", "merchant", "points_per_currency_unit", "rounding", "welcome_bonus",
                    "points_validity_days", "refund_policy", "is_active")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "is_active")
    inlines = [TierInline, RewardInline]


@admin.register(Reward)
class RewardAdmin(MerchantScopedAdmin):
    merchant_lookup = "program__merchant"
    list_display = ("name", "program", "kind", "points_cost", "stock", "is_active")
    list_filter = (("program__merchant", admin.RelatedOnlyFieldListFilter), "kind", "is_active")


@admin.register(StaffMember)
class StaffMemberAdmin(MerchantScopedAdmin):
    list_display = ("user", "merchant", "role", "is_active")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "role")
