from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The merchant back office: reports that span the core and the integrations (reconciliation,
    liability) and the admin pages that show them. Sits above wallet, pos_integration and crm_sync."""

    name = "backoffice"
    verbose_name = "Back office"
