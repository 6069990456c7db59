"""Admin building blocks shared by the apps."""
from django.contrib import admin

from core.tenancy import visible_merchant_ids


class MerchantScopedAdmin(admin.ModelAdmin):
    """A merchant's staff see only rows of their merchants; superusers see all.

    `merchant_lookup` is the path from the model to its merchant id (e.g. "program__merchant").
    """

    merchant_lookup = "merchant"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        merchant_ids = visible_merchant_ids(request.user)
        if merchant_ids is None:
            return queryset
        return queryset.filter(**{f"{self.merchant_lookup}__in": merchant_ids}).distinct()


class ReadOnlyAdmin(MerchantScopedAdmin):
    """For records nobody edits by hand: the ledger, the outbox, idempotency records."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Platform-wide records that no single merchant's staff may see."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser
