"""Make a user a cashier of a merchant and set their counter PIN (asked for, never echoed)."""
import getpass
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ValidationFailed
from merchants.models import Merchant, StaffMember
from merchants.services import grant_staff_access
from pos_integration.cashiers import set_pin


class Command(BaseCommand):
    help = "Set a staff member's counter PIN (making them a cashier of the merchant if they are not staff yet)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="Merchant slug")
        parser.add_argument("--user", required=True, help="Username of the cashier")
        parser.add_argument("--pin-stdin", action="store_true", help="Read the PIN from standard input (scripts)")

    def handle(self, *args, **options):
        merchant = Merchant.objects.filter(slug=options["merchant"]).first()
        user = get_user_model().objects.filter(username=options["user"]).first()
        if merchant is None or user is None:
            raise CommandError("No such merchant or user.")
        staff = StaffMember.objects.filter(merchant=merchant, user=user).first()
        if staff is None:
            staff = grant_staff_access(merchant, user, StaffMember.Role.CASHIER)
        pin = sys.stdin.readline().strip() if options["pin_stdin"] else getpass.getpass("New PIN (4 to 8 digits): ")
        try:
            set_pin(staff, pin)
        except ValidationFailed as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"PIN set for {staff.display_name} (cashier id {staff.pk}) at {merchant.name}.")
