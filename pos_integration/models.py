"""POS devices: a till, tablet or browser page that calls the POS API with its own key."""
from django.db import models


class PosDevice(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="pos_devices")
    store = models.ForeignKey("merchants.Store", on_delete=models.CASCADE, related_name="pos_devices")
    name = models.CharField(max_length=120)
    # The key's public prefix finds the row; only a slow hash of the whole key is stored.
    key_prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=255)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["merchant", "name"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"
