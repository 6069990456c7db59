"""Admin for the tenant's models, scoped per merchant by role (core.admin_base): owners and managers edit
their merchant's stores, programs, tiers and rewards with choice lists cut to their merchant; owners
manage staff, and owners and managers set cashiers' counter PINs (merchants.admin_pin). Every change is kept
in the audit history (the "History" button)."""
from django import forms
from django.contrib import admin

import merchants.billing.admin  # noqa: F401  (registers the billing models)
from core.admin_base import AuditedAdmin, ScopedInlineMixin
from core.tenancy import OWNER
from merchants.admin_pin import CounterPinAdminMixin
from merchants.models import Merchant, Program, Reward, StaffMember, Store, Tier
from merchants.services import add_staff_by_email, deactivate_staff, grant_staff_access


class StoreInline(ScopedInlineMixin, admin.TabularInline):
    model = Store
    extra = 0
    fields = ("name", "city", "time_zone", "is_active")
    show_change_link = True


@admin.register(Merchant)
class MerchantAdmin(AuditedAdmin):
    merchant_lookup = "id"
    change_roles = (OWNER,)
    staff_can_add = False  # a new merchant is onboarded by Tessera (and billed), not created by staff
    list_display = ("name", "slug", "currency", "time_zone", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [StoreInline]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ()
        # The slug is in card pages' URLs; deactivating the merchant would lock its own staff out.
        return ("slug", "currency", "is_active")

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}


@admin.register(Store)
class StoreAdmin(AuditedAdmin):
    list_display = ("name", "merchant", "city", "time_zone", "is_active")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "is_active")
    search_fields = ("name", "city")


class TierInline(ScopedInlineMixin, admin.TabularInline):
    model = Tier
    extra = 0


class RewardInline(ScopedInlineMixin, admin.TabularInline):
    model = Reward
    extra = 0
    fields = ("name", "kind", "value", "points_cost", "stock", "is_active")
    show_change_link = True


@admin.register(Program)
class ProgramAdmin(AuditedAdmin):
    list_display = ("name", "merchant", "points_per_currency_unit", "rounding", "welcome_bonus",
                    "points_validity_days", "point_value", "refund_policy", "is_active")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "is_active")
    search_fields = ("name",)
    inlines = [TierInline, RewardInline]


@admin.register(Reward)
class RewardAdmin(AuditedAdmin):
    merchant_lookup = "program__merchant"
    list_display = ("name", "program", "kind", "points_cost", "stock", "is_active")
    list_filter = (("program__merchant", admin.RelatedOnlyFieldListFilter), "kind", "is_active")
    search_fields = ("name",)
    autocomplete_fields = ("program",)


class StaffMemberAddForm(forms.ModelForm):
    """Owners add a colleague by email; no list of every user on the platform is ever shown."""

    email = forms.EmailField(help_text="Their existing Tessera login, or a new account is made for them.")
    first_name = forms.CharField(required=False, max_length=150)

    class Meta:
        model = StaffMember
        fields = ("merchant", "role")


@admin.register(StaffMember)
class StaffMemberAdmin(CounterPinAdminMixin, AuditedAdmin):
    change_roles = (OWNER,)
    list_display = ("user", "merchant", "role", "is_active", "has_pin")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "role", "is_active")
    search_fields = ("user__username", "user__email", "user__first_name")
    list_select_related = ("user", "merchant")

    @admin.display(boolean=True, description="Counter PIN set")
    def has_pin(self, obj):
        return bool(obj.pin_hash)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = StaffMemberAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("merchant", "email", "first_name", "role")
        return ("user", "merchant", "role", "is_active", "counter_pin")

    def get_readonly_fields(self, request, obj=None):
        return ("user", "merchant", "counter_pin") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        """Saved through the services, which also let owners and managers into the admin."""
        if change:
            if obj.is_active:
                grant_staff_access(obj.merchant, obj.user, obj.role)
            else:
                deactivate_staff(obj)
            return
        member = add_staff_by_email(
            form.cleaned_data["merchant"], email=form.cleaned_data["email"], role=form.cleaned_data["role"],
            first_name=form.cleaned_data.get("first_name", ""),
        )
        obj.pk, obj.user_id = member.pk, member.user_id

    def has_change_permission(self, request, obj=None):
        # Nobody changes their own role here: an owner cannot demote or lock themselves out by mistake.
        if obj is not None and obj.user_id == request.user.pk and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")
