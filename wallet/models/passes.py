"""What passes need to be stored: merchants' token-signing keys and Apple Wallet registrations."""
from django.db import models


class PassSigningKey(models.Model):
    """A merchant's Ed25519 key pair for rotating pass tokens.

    Devices of the merchant get the public key, so a counter can verify a token offline. Rotation
    makes a new key active and keeps the old one `retired`: tokens it signed stay valid until
    their drift window ends, so passes in flight never break. `revoked` keys verify nothing.
    The private key is stored encrypted with a key derived from TESSERA_SIGNING_KEY.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active (signs and verifies)"
        RETIRED = "retired", "Retired (verifies tokens in flight)"
        REVOKED = "revoked", "Revoked (verifies nothing)"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="pass_signing_keys")
    key_id = models.CharField(max_length=16, unique=True)
    public_key = models.CharField(max_length=64, help_text="Raw Ed25519 public key, base64url")
    private_key_encrypted = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["merchant", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"], condition=models.Q(status="active"), name="one_active_pass_key_per_merchant"
            )
        ]

    def __str__(self):
        return f"{self.key_id} ({self.status})"


class AppleDevice(models.Model):
    """A device that added passes to Apple Wallet, with the push token APNs delivers to."""

    device_library_identifier = models.CharField(max_length=128, unique=True)
    push_token = models.CharField(max_length=256)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.device_library_identifier


class AppleRegistration(models.Model):
    """A pass (one card) registered on a device for updates."""

    device = models.ForeignKey(AppleDevice, on_delete=models.CASCADE, related_name="registrations")
    card = models.ForeignKey("wallet.Card", on_delete=models.CASCADE, related_name="apple_registrations")
    pass_type_identifier = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "card", "pass_type_identifier"], name="apple_registration_unique")
        ]

    def __str__(self):
        return f"{self.card_id} on {self.device_id}"
