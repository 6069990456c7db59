from django.apps import AppConfig


class WalletConfig(AppConfig):
    name = "wallet"
    verbose_name = "Wallet"

    def ready(self):
        from merchants import rules_cache
        from wallet.models import PassSigningKey

        rules_cache.watch(PassSigningKey, lambda key: key.merchant_id)  # tokens are checked against them
