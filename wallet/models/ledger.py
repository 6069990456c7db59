"""The points ledger: append-only entries whose sum is each card's balance.

Entries are never updated or deleted. The model and its queryset refuse both in Python, and on
PostgreSQL a trigger (migration 0002) refuses them in the database too, whatever the client.
A correction is a new entry that references the one it corrects (`reverses`).
"""
from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove a ledger entry."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Ledger entries are append-only: write a correcting entry instead.")

    def delete(self):
        raise AppendOnlyError("Ledger entries are append-only: write a correcting entry instead.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Ledger entries are append-only: write a correcting entry instead.")


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        WELCOME = "welcome", "Welcome bonus"
        EARN = "earn", "Earned on a purchase"
        REDEEM = "redeem", "Redeemed for a reward"
        REDEMPTION_CANCEL = "redemption_cancel", "Redeemed points returned"
        REFUND = "refund", "Reversed by a refund"
        ADJUST = "adjust", "Manual adjustment"
        EXPIRE = "expire", "Expired"
        REVERSAL = "reversal", "Reversal of an entry"

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="ledger_entries")
    card = models.ForeignKey("wallet.Card", on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    delta = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="For credits under an expiry policy: when their unspent part expires"
    )
    store = models.ForeignKey(
        "merchants.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Where it happened, when a store is known (a sale's store, the till's store)",
    )
    purchase = models.ForeignKey(
        "wallet.Purchase", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    redemption = models.ForeignKey(
        "wallet.Redemption", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals",
        help_text="The entry this one reverses or corrects",
    )
    multiplier = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    # The promotion that shaped an earn entry (an engagement offer's multiplier or bonus). A plain id and
    # its title at the time, not a foreign key: the core does not depend on the engagement app.
    offer_id = models.PositiveBigIntegerField(null=True, blank=True)
    offer_title = models.CharField(max_length=120, blank=True, db_default="")
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=20, default="system", help_text="api, pos, webhook, admin, system")
    occurred_at = models.DateTimeField(help_text="When it happened in the world (a POS's original time)")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(delta=0), name="ledger_delta_not_zero"),
            models.CheckConstraint(
                condition=~models.Q(kind="adjust") | ~models.Q(reason=""), name="ledger_adjust_has_reason"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="reversal") | (models.Q(reverses__isnull=False) & ~models.Q(reason="")),
                name="ledger_reversal_names_entry_and_reason",
            ),
            # An entry is reversed at most once, whoever asks and however often.
            models.UniqueConstraint(
                fields=["reverses"], condition=models.Q(kind="reversal"), name="ledger_entry_reversed_once"
            ),
        ]
        # The reconciliation and liability reports read a merchant's period or cards from these alone
        # (index-only scans on PostgreSQL: 5x faster over 10^6 entries, see bench/reconciliation_bench.py).
        # SQLite ignores INCLUDE and keeps the plain indexes.
        indexes = [
            models.Index(fields=["card", "id"]),
            models.Index(fields=["merchant", "occurred_at"], include=["kind", "delta", "purchase", "store"],
                         name="ledger_merchant_period"),
            models.Index(fields=["merchant", "card"], include=["delta"], name="ledger_merchant_card_delta"),
            # The hourly expiry sweep reads only what changed since its last run (wallet.services.expiry):
            # lots whose expiry it passed, and credits written since.
            models.Index(fields=["expires_at"], condition=models.Q(expires_at__isnull=False), name="ledger_lot_expiry"),
            models.Index(fields=["created_at"], name="ledger_created_at"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.delta:+d} on {self.card_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Ledger entries are append-only: write a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are append-only: write a correcting entry instead.")


class ExpiryWarning(models.Model):
    """A customer was told that points on a card expire at `expires_at`: one warning per card and date."""

    card = models.ForeignKey("wallet.Card", on_delete=models.CASCADE, related_name="expiry_warnings")
    expires_at = models.DateTimeField()
    points = models.BigIntegerField(help_text="Points that would expire then, as of the warning")
    warned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-warned_at"]
        constraints = [
            models.UniqueConstraint(fields=["card", "expires_at"], name="expiry_warning_once_per_card_and_date")
        ]

    def __str__(self):
        return f"{self.points} points on card {self.card_id} expiring {self.expires_at:%Y-%m-%d}"


class ExpirySweep(models.Model):
    """How far the expiry sweep has looked: one row. The next sweep reads only lots that expired after
    it, and credits written after it (less an overlap), instead of every card with an old lot."""

    checked_until = models.DateTimeField()

    def __str__(self):
        return f"Expiry checked until {self.checked_until:%Y-%m-%d %H:%M}"
