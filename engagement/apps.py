from django.apps import AppConfig


class EngagementConfig(AppConfig):
    """Offers, audiences and campaigns: the right offer at the right local time and place, only on the
    channels a customer allowed. Sits above wallet (reads cards, ledger, purchases, preferences) and
    plugs into it through the hooks in wallet/hooks.py; the core never imports it."""

    name = "engagement"
    verbose_name = "Engagement"

    def ready(self):
        from engagement.models import Audience, Offer
        from merchants import rules_cache

        rules_cache.watch(Offer, lambda offer: offer.merchant_id)  # the counter's earning bonus
        rules_cache.watch(Audience, lambda audience: audience.merchant_id)
