"""Prove invariant 2: every card's cached balance equals the sum of its ledger entries."""
from django.core.management.base import BaseCommand, CommandError

from wallet.ledger import cards_out_of_balance
from wallet.models import Card


class Command(BaseCommand):
    help = "Verify balance == sum of ledger entries for every card; exit non-zero naming each card that differs."

    def handle(self, *args, **options):
        mismatches = cards_out_of_balance()
        for card_id, number, balance, total in mismatches:
            self.stderr.write(f"card {number} (id {card_id}): balance {balance} != sum of entries {total}")
        if mismatches:
            raise CommandError(f"{len(mismatches)} card(s) out of balance.")
        self.stdout.write(f"Ledger OK: {Card.objects.count()} card(s), every balance equals the sum of its entries.")
