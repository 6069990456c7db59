"""Admin for the counter and the POS connections, scoped per merchant (core.admin_base): devices (a new
or rotated key is shown once), cashier actions, connections (secrets masked, owners only), and every
webhook delivery with a replay action. Adds a "device" filter to the ledger list."""
from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from core.admin_base import AuditedAdmin, ReadOnlyAdmin
from core.connection_forms import ConnectionSettingsForm
from core.tenancy import ADMIN_ROLES, OWNER, changeable_merchant_ids, visible_merchant_ids
from merchants.models import Store
from pos_integration import registry
from pos_integration.connections import create_connection, update_connection, webhook_url
from pos_integration.models import CounterAction, PosConnection, PosDevice, WebhookDelivery
from pos_integration.processing import process_delivery
from pos_integration.services import register_device, rename_device, revoke_device, rotate_device_key
from wallet.admin import LedgerEntryAdmin


class LedgerDeviceFilter(admin.SimpleListFilter):
    """Ledger entries written at one till (through its counter actions)."""

    title = "device"
    parameter_name = "device"

    def lookups(self, request, model_admin):
        devices = PosDevice.objects.all()
        merchant_ids = visible_merchant_ids(request.user)
        if merchant_ids is not None:
            devices = devices.filter(merchant_id__in=merchant_ids)
        return [(str(device.pk), str(device)) for device in devices.order_by("name")]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(counter_actions__device_id=int(self.value()))
        return queryset


LedgerEntryAdmin.extra_list_filters.append(LedgerDeviceFilter)


class NewDeviceForm(forms.ModelForm):
    class Meta:
        model = PosDevice
        fields = ("store", "name")


def _key_page(request, admin_site, issued, title):
    """The only time a device key is shown: rendered straight into the page, never stored or logged."""
    context = {**admin_site.each_context(request), "title": title, "device": issued.device, "key": issued.key,
               "opts": PosDevice._meta}
    response = TemplateResponse(request, "admin/pos_integration/posdevice/issued_key.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin.register(PosDevice)
class PosDeviceAdmin(AuditedAdmin):
    list_display = ("name", "merchant", "store", "key_prefix", "is_active", "last_used_at")
    list_filter = (("merchant", admin.RelatedOnlyFieldListFilter), ("store", admin.RelatedOnlyFieldListFilter),
                   "is_active")
    search_fields = ("name", "key_prefix")
    readonly_fields = ("merchant", "key_prefix", "created_at", "revoked_at", "last_used_at")
    fields = ("merchant", "store", "name", "key_prefix", "is_active", "created_at", "revoked_at", "last_used_at")
    actions = ["revoke", "rotate_key"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = NewDeviceForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("store", "name") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        # Activation goes through "revoke" and "rotate key", which keep the key rules in one place.
        return () if obj is None else (*self.readonly_fields, "store", "is_active")

    def save_model(self, request, obj, form, change):
        if change:
            rename_device(obj, obj.name)
            return
        issued = register_device(form.cleaned_data["store"], form.cleaned_data["name"])
        obj.pk, request._issued_device_key = issued.device.pk, issued

    def response_add(self, request, obj, post_url_continue=None):
        return _key_page(request, self.admin_site, request._issued_device_key, f"Key for {obj.name}")

    @admin.action(description="Revoke the selected devices (their keys stop working at once)",
                  permissions=["change"])
    def revoke(self, request, queryset):
        for device in queryset:
            revoke_device(device)
        messages.success(request, f"{queryset.count()} device(s) revoked.")

    @admin.action(description="Issue a new key for the selected device (the old key stops working)",
                  permissions=["change"])
    def rotate_key(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Choose exactly one device: its new key is shown once.")
            return None
        return _key_page(request, self.admin_site, rotate_device_key(queryset.get()), "New device key")


@admin.register(CounterAction)
class CounterActionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "device", "cashier", "card", "ledger_entry")
    list_filter = ("kind", ("merchant", admin.RelatedOnlyFieldListFilter), ("device", admin.RelatedOnlyFieldListFilter),
                   ("cashier", admin.RelatedOnlyFieldListFilter), ("created_at", admin.DateFieldListFilter))
    list_select_related = ("device", "cashier__user", "card", "ledger_entry")


class PosConnectionForm(ConnectionSettingsForm):
    registry = registry

    class Meta:
        model = PosConnection
        fields = ("merchant", "store", "connector", "name", "is_active")


@admin.register(PosConnection)
class PosConnectionAdmin(AuditedAdmin):
    change_roles = (OWNER,)  # connections hold the merchant's vendor secrets
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
            update_connection(obj, values, name=obj.name, store=obj.store, is_active=obj.is_active)
        else:
            obj.pk = create_connection(obj.merchant, obj.connector, obj.name, values, store=obj.store).pk

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "store":
            kwargs["queryset"] = self.scoped_choices(request, Store)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    merchant_lookup = "connection__merchant"
    list_display = ("received_at", "connection", "status", "failure_code", "vendor_event_id", "rejection_reason",
                    "attempts")
    list_filter = ("status", "failure_code", "connection__connector", ("received_at", admin.DateFieldListFilter))
    list_select_related = ("connection",)
    readonly_fields = ("connection", "received_at", "status", "rejection_reason", "vendor_event_id", "attempts",
                       "processed_at", "error", "outcome", "headers", "body_text")
    exclude = ("body",)
    actions = ["replay"]

    @admin.display(description="Body")
    def body_text(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", bytes(obj.body).decode("utf-8", "replace"))

    def has_replay_permission(self, request):
        return changeable_merchant_ids(request.user, ADMIN_ROLES) != set()

    @admin.action(description="Replay the selected deliveries (verified ones only; safe to repeat)",
                  permissions=["replay"])
    def replay(self, request, queryset):
        done = {}
        for delivery in queryset.exclude(status=WebhookDelivery.Status.REJECTED):
            status = process_delivery(delivery.pk, replay=True).status
            done[status] = done.get(status, 0) + 1
        skipped = queryset.filter(status=WebhookDelivery.Status.REJECTED).count()
        summary = ", ".join(f"{count} {status}" for status, count in done.items()) or "nothing replayed"
        messages.info(request, f"Replayed: {summary}. Rejected deliveries are never replayed ({skipped} skipped).")
