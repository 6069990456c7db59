"""Third-party cards: any store's plastic card kept in the wallet by its barcode."""
from django.db import models


class ExternalCard(models.Model):
    class Format(models.TextChoices):
        CODE_128 = "code128", "Code 128"
        CODE_39 = "code39", "Code 39"
        EAN_13 = "ean13", "EAN-13"
        EAN_8 = "ean8", "EAN-8"
        UPC_A = "upca", "UPC-A"
        ITF = "itf", "Interleaved 2 of 5"
        CODABAR = "codabar", "Codabar"
        QR = "qr", "QR code"
        PDF417 = "pdf417", "PDF417"
        AZTEC = "aztec", "Aztec"
        DATA_MATRIX = "datamatrix", "Data Matrix"

    wallet = models.ForeignKey("wallet.Wallet", on_delete=models.CASCADE, related_name="external_cards")
    name = models.CharField(max_length=80)
    barcode_value = models.CharField(max_length=2000)
    barcode_format = models.CharField(max_length=12, choices=Format.choices)
    color = models.CharField(max_length=7, default="#6B7280", help_text="Hex colour, e.g. #FF8800")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name
