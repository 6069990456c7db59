"""Tessera's admin site: open to superusers and to each merchant's owners and managers, nobody else.

Cashiers and customers have no business in the admin; a staff flag alone is not enough either, a user
must hold an owner or manager role at an active membership.
"""
from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig

from core.tenancy import may_use_admin


class TesseraAdminSite(AdminSite):
    site_header = "Tessera"
    site_title = "Tessera admin"
    index_title = "Merchant back office"
    index_template = "admin/tessera_index.html"

    def each_context(self, request):
        from backoffice.reports import report_links  # the site is built before the URLconf is loaded

        context = super().each_context(request)
        context["backoffice_reports"] = report_links() if self.has_permission(request) else []
        return context

    def has_permission(self, request):
        return may_use_admin(request.user)


class TesseraAdminConfig(AdminConfig):
    default_site = "config.admin_site.TesseraAdminSite"
