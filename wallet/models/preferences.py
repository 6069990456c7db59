"""Which merchants may contact a customer, on which channel. Absent means no: opt-in only."""
from django.db import models


class CommunicationPreference(models.Model):
    class Channel(models.TextChoices):
        PUSH = "push", "Push notification"
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        WALLET_PASS = "wallet_pass", "Wallet pass message"

    customer = models.ForeignKey("wallet.Customer", on_delete=models.CASCADE, related_name="preferences")
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    is_opted_in = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "merchant", "channel"], name="preference_unique_per_channel")
        ]

    def __str__(self):
        return f"{self.customer_id} / {self.merchant_id} / {self.channel}: {self.is_opted_in}"
