from django.apps import AppConfig


class PosIntegrationConfig(AppConfig):
    name = "pos_integration"
    verbose_name = "POS integration"
