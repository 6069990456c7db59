"""Admin building blocks shared by the apps: every merchant-owned model's admin derives from these.

Staff access is decided by the merchant roles of `core.tenancy`, not by Django's per-model permission
tables: an owner or manager sees their merchants' rows in every list, detail, filter, form choice,
autocomplete and action, and nothing else. Superusers see all.
"""
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from core.tenancy import ADMIN_ROLES, changeable_merchant_ids, merchant_lookup_for, scope_queryset, visible_merchant_ids


class MerchantScopedAdmin(admin.ModelAdmin):
    """A merchant's staff see only rows of their merchants; superusers see all.

    `merchant_lookup`: the path from the model to its merchant id (e.g. "program__merchant").
    `change_roles`: the roles that may add and change rows (owner-only for staff, connections, billing).
    Deleting is for superusers: merchants deactivate instead, and money rows are protected anyway.
    """

    merchant_lookup = "merchant"
    change_roles = ADMIN_ROLES
    staff_can_add = True

    # Rows ----------------------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        merchant_ids = visible_merchant_ids(request.user)
        if merchant_ids is None:
            return queryset
        return scope_queryset(queryset, merchant_ids, self.merchant_lookup).distinct()

    def _in_scope(self, obj, merchant_ids) -> bool:
        if merchant_ids is None:
            return True
        rows = self.model._default_manager.filter(pk=obj.pk)
        return scope_queryset(rows, merchant_ids, self.merchant_lookup).exists()

    def editable_merchant_ids(self, request) -> set[int] | None:
        return changeable_merchant_ids(request.user, self.change_roles)

    # Permissions ---------------------------------------------------------------------------------

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        merchant_ids = visible_merchant_ids(request.user)
        if merchant_ids is None:
            return True
        if not merchant_ids:
            return False
        return obj is None or self._in_scope(obj, merchant_ids)

    def has_change_permission(self, request, obj=None):
        merchant_ids = self.editable_merchant_ids(request)
        if merchant_ids is None:
            return True
        if not merchant_ids:
            return False
        return obj is None or self._in_scope(obj, merchant_ids)

    def has_add_permission(self, request):
        if request.user.is_superuser:
            return True
        return self.staff_can_add and bool(self.editable_merchant_ids(request))

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    # Form choices --------------------------------------------------------------------------------

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """A choice list offers only the user's own merchants' rows (stores, programs, rewards...)."""
        if "queryset" not in kwargs:
            kwargs["queryset"] = self.scoped_choices(request, db_field.remote_field.model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = self.scoped_choices(request, db_field.remote_field.model)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def scoped_choices(self, request, model):
        queryset = model._default_manager.all()
        merchant_ids = self.editable_merchant_ids(request)
        if merchant_ids is None:
            return queryset
        return scope_queryset(queryset, merchant_ids, merchant_lookup_for(model))


class AuditedAdmin(SimpleHistoryAdmin, MerchantScopedAdmin):
    """A scoped admin whose "History" page shows who changed what (django-simple-history), read-only."""


class ScopedInlineMixin:
    """Inline rows follow their parent: who may change the parent may change its rows (merchant roles,
    not Django's permission tables), and the rows' own choice lists are scoped like the parent's."""

    def _parent_admin(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None):
        return self._parent_admin().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent_admin().has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = db_field.remote_field.model._default_manager.all()
            merchant_ids = changeable_merchant_ids(request.user)
            if merchant_ids is not None:
                queryset = scope_queryset(queryset, merchant_ids, merchant_lookup_for(db_field.remote_field.model))
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class NobodyEditsMixin:
    """No add, change or delete for anyone: put it before the admin class whose view rules it keeps."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NobodyEditsMixin, MerchantScopedAdmin):
    """For records nobody edits by hand: the ledger, the outbox, idempotency records."""


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Platform-wide records that no single merchant's staff may see."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class SuperuserReadOnlyAdmin(NobodyEditsMixin, SuperuserOnlyAdmin):
    """Platform records superusers may look at but nobody edits by hand (a vendor's event log, devices)."""
