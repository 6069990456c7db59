"""Admin for the counter and the POS connections: devices, cashier actions, connections (secrets
masked), and every webhook delivery with a replay action."""
from django.contrib import admin, messages
from django.utils.html import format_html

from core.admin_base import MerchantScopedAdmin, ReadOnlyAdmin
from core.connection_forms import ConnectionSettingsForm
from pos_integration import registry
from pos_integration.connections import create_connection, update_connection, webhook_url
from pos_integration.models import CounterAction, PosConnection, PosDevice, WebhookDelivery
from pos_integration.processing import process_delivery


@admin.register(PosDevice)
class PosDeviceAdmin(MerchantScopedAdmin):
    list_display = ("name", "merchant", "store", "key_prefix", "is_active", "last_used_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), "is_active")
    readonly_fields = ("key_prefix", "created_at", "revoked_at", "last_used_at")
    exclude = ("key_hash",)

    def has_add_permission(self, request):
        return False  # keys are issued by `register_device`, which shows the key once


@admin.register(CounterAction)
class CounterActionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "device", "cashier", "card", "ledger_entry")
    list_filter = ("kind", ("merchant", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("device", "cashier__user", "card", "ledger_entry")


class PosConnectionForm(ConnectionSettingsForm):
    registry = registry

    class Meta:
        model = PosConnection
        fields = ("merchant", "store", "connector", "name", "is_active")


@admin.register(PosConnection)
class PosConnectionAdmin(MerchantScopedAdmin):
    form = PosConnectionForm
    list_display = ("name", "connector", "merchant", "is_active", "last_delivery_at", "last_polled_at")
    list_filter = ("connector", "is_active", ("merchant", admin.RelatedOnlyFieldListFilter))
    readonly_fields = ("id", "webhook_address", "last_delivery_at", "last_polled_at", "created_at")

    @admin.display(description="Webhook URL to register with the vendor")
    def webhook_address(self, obj):
        return webhook_url(obj) if obj and obj.pk else "(shown after saving)"

    def save_model(self, request, obj, form, change):
        """Saved through the services, which validate again and seal the secrets."""
        values = form.cleaned_data.get("settings_json") or {}
        if change:
            update_connection(obj, values)
            PosConnection.objects.filter(pk=obj.pk).update(name=obj.name, store=obj.store, is_active=obj.is_active)
        else:
            obj.pk = create_connection(obj.merchant, obj.connector, obj.name, values, store=obj.store).pk


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    merchant_lookup = "connection__merchant"
    list_display = ("received_at", "connection", "status", "vendor_event_id", "rejection_reason", "attempts")
    list_filter = ("status", "connection__connector")
    list_select_related = ("connection",)
    readonly_fields = ("connection", "received_at", "status", "rejection_reason", "vendor_event_id", "attempts",
                       "processed_at", "error", "outcome", "headers", "body_text")
    exclude = ("body",)
    actions = ["replay"]

    @admin.display(description="Body")
    def body_text(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", bytes(obj.body).decode("utf-8", "replace"))

    @admin.action(description="Replay the selected deliveries (verified ones only; safe to repeat)")
    def replay(self, request, queryset):
        if not request.user.has_perm("pos_integration.change_posconnection"):
            messages.error(request, "You may not replay deliveries.")
            return
        done = {}
        for delivery in queryset.exclude(status=WebhookDelivery.Status.REJECTED):
            status = process_delivery(delivery.pk, replay=True).status
            done[status] = done.get(status, 0) + 1
        skipped = queryset.filter(status=WebhookDelivery.Status.REJECTED).count()
        summary = ", ".join(f"{count} {status}" for status, count in done.items()) or "nothing replayed"
        messages.info(request, f"Replayed: {summary}. Rejected deliveries are never replayed ({skipped} skipped).")
