"""Load the demo merchants, customer, cards and a POS device key (idempotent)."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from merchants.demo import seed_demo
from wallet.models import Card
from wallet.services.card_page import card_page_url


class Command(BaseCommand):
    help = "Create demo data: a café and a bookshop with owners, a customer with a card at each, a POS device key."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Allow in production (you almost never want this).")

    def handle(self, *args, **options):
        if settings.IS_PRODUCTION and not options["force"]:
            raise CommandError("Refusing to load demo data with TESSERA_ENV=production (use --force if you mean it).")
        summary = seed_demo()
        out = self.stdout.write
        out("Demo data ready.")
        for username, password in summary.owners:
            out(f"  merchant owner login: {username} / {password}")
        out(f"  customer login:       {summary.customer} / tessera-demo")
        out(f"  demo cards:           {', '.join(summary.card_numbers)}")
        for number in summary.card_numbers:
            out(f"  card page (no app):   {card_page_url(Card.objects.get(number=number))}")
        out(f"  POS device key ({summary.device_name}, shown once, re-issued on every seed): {summary.device_key}")
        out(f"  web till:             {settings.TESSERA_PUBLIC_URL}/till/ (device key above, "
            f"cashier {summary.cashier}, PIN {summary.cashier_pin})")
