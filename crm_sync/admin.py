"""Admin for CRM connections: settings (secrets masked), sync health, pause and resume, and the
deliveries with a retry action for dead letters."""
from django.contrib import admin, messages

from core.admin_base import AuditedAdmin, ReadOnlyAdmin
from core.connection_forms import ConnectionSettingsForm
from core.tenancy import ADMIN_ROLES, OWNER, changeable_merchant_ids
from crm_sync import registry
from crm_sync.connections import create_connection, inbound_url, set_paused, update_connection
from crm_sync.delivery import retry_dead_letters
from crm_sync.health import health_of
from crm_sync.models import CrmConnection, CrmDelivery
from crm_sync.outbox import forget_connected_merchants


class CrmConnectionForm(ConnectionSettingsForm):
    registry = registry

    class Meta:
        model = CrmConnection
        fields = ("merchant", "connector", "name", "event_types", "field_mapping", "max_attempts", "is_paused")


@admin.register(CrmConnection)
class CrmConnectionAdmin(AuditedAdmin):
    change_roles = (OWNER,)  # connections hold the merchant's CRM secrets
    form = CrmConnectionForm
    list_display = ("name", "connector", "merchant", "is_paused", "sync_lag", "failing", "dead", "last_success_at")
    list_filter = ("connector", "is_paused", ("merchant", admin.RelatedOnlyFieldListFilter))
    readonly_fields = ("id", "inbound_address", "health_summary", "last_error", "last_success_at", "created_at")
    actions = ["pause", "resume", "retry_dead"]

    @staticmethod
    def _health(obj):
        if not hasattr(obj, "_health"):
            obj._health = health_of(obj)  # one computation per row for the three columns
        return obj._health

    @admin.display(description="Lag")
    def sync_lag(self, obj):
        lag = self._health(obj).lag
        return "up to date" if lag is None else f"{int(lag.total_seconds())} s"

    @admin.display(description="Failing")
    def failing(self, obj):
        return self._health(obj).failing

    @admin.display(description="Dead letters")
    def dead(self, obj):
        return self._health(obj).dead

    @admin.display(description="Sync health")
    def health_summary(self, obj):
        if obj is None or obj._state.adding:
            return "(after saving)"
        h = health_of(obj)
        lag = "up to date" if h.lag is None else f"oldest undelivered event {int(h.lag.total_seconds())} s old"
        return f"{lag}; {h.delivered} delivered, {h.pending} pending ({h.failing} failing), {h.dead} dead"

    @admin.display(description="Inbound webhook URL (for CRMs that send consent changes)")
    def inbound_address(self, obj):
        return inbound_url(obj) if obj and not obj._state.adding else "(shown after saving)"

    def save_model(self, request, obj, form, change):
        """Saved through the services, which validate again and seal the secrets."""
        values = form.cleaned_data.get("settings_json") or {}
        if change:
            update_connection(
                obj, values, name=obj.name, event_types=obj.event_types, field_mapping=obj.field_mapping,
                max_attempts=obj.max_attempts, is_paused=obj.is_paused,
            )
        else:
            obj.pk = create_connection(
                obj.merchant, obj.connector, obj.name, values, event_types=obj.event_types or [],
                field_mapping=obj.field_mapping, max_attempts=obj.max_attempts,
            ).pk
        forget_connected_merchants()

    @admin.action(description="Pause sending (events wait, in order)", permissions=["change"])
    def pause(self, request, queryset):
        for connection in queryset:
            set_paused(connection, True)
        forget_connected_merchants()

    @admin.action(description="Resume sending", permissions=["change"])
    def resume(self, request, queryset):
        for connection in queryset:
            set_paused(connection, False)
        forget_connected_merchants()

    @admin.action(description="Retry the dead letters of the selected connections", permissions=["change"])
    def retry_dead(self, request, queryset):
        count = sum(retry_dead_letters(connection.pk) for connection in queryset)
        messages.info(request, f"{count} dead letters queued again; the next sweep sends them.")


@admin.register(CrmDelivery)
class CrmDeliveryAdmin(ReadOnlyAdmin):
    merchant_lookup = "connection__merchant"
    list_display = ("event_id", "connection", "status", "attempts", "next_attempt_at", "last_error")
    list_filter = ("status", "connection__connector")
    list_select_related = ("connection",)
    actions = ["retry"]

    def has_retry_permission(self, request):
        return changeable_merchant_ids(request.user, ADMIN_ROLES) != set()

    @admin.action(description="Retry the selected dead letters", permissions=["retry"])
    def retry(self, request, queryset):
        count = retry_dead_letters(delivery_ids=list(queryset.values_list("pk", flat=True)))
        messages.info(request, f"{count} dead letters queued again.")
