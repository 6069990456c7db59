from django.apps import AppConfig


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = "Merchants"

    def ready(self):
        from merchants import rules_cache
        from merchants.models import Merchant, Program, Tier

        rules_cache.watch(Merchant, lambda merchant: merchant.pk)  # its time zone judges offers
        rules_cache.watch(Program, lambda program: program.merchant_id)
        rules_cache.watch(Tier, _merchant_of_tier)


def _merchant_of_tier(tier) -> int | None:
    from merchants.models import Program

    return Program.objects.filter(pk=tier.program_id).values_list("merchant_id", flat=True).first()
