from django.contrib import admin

from core.admin_base import MerchantScopedAdmin
from pos_integration.models import PosDevice


@admin.register(PosDevice)
class PosDeviceAdmin(MerchantScopedAdmin):
    list_display = ("name", "merchant", "store", "key_prefix", "is_active", "last_used_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "is_active")
    readonly_fields = ("key_prefix", "created_at", "revoked_at", "last_used_at")
    exclude = ("key_hash",)

    def has_add_permission(self, request):
        return False  # keys are issued by `register_device`, which shows the key once
