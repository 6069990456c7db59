"""Minimal admin for the tenant's models. Per-merchant scoping arrives with the merchant admin issue."""
from django.contrib import admin

from merchants.models import Merchant, Program, Reward, StaffMember, Store, Tier


class StoreInline(admin.TabularInline):
    model = Store
    extra = 0


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "currency", "time_zone", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [StoreInline]


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("name", "merchant", "city", "time_zone", "is_active")
    list_filter = ("merchant",)
    search_fields = ("name", "city")


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0


class RewardInline(admin.TabularInline):
    model = Reward
    extra = 0


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ("name", "merchant", "points_per_currency_unit", "rounding", "welcome_bonus",
                    "points_validity_days", "refund_policy", "is_active")
    list_filter = ("merchant", "is_active")
    inlines = [TierInline, RewardInline]


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "kind", "points_cost", "stock", "is_active")
    list_filter = ("program__merchant", "kind", "is_active")


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "merchant", "role", "is_active")
    list_filter = ("merchant", "role")
