"""Register, rotate or revoke a till's device key from the shell (the key is printed once)."""
from django.core.management.base import BaseCommand, CommandError

from merchants.models import Store
from pos_integration.models import PosDevice
from pos_integration.services import register_device, revoke_device, rotate_device_key


class Command(BaseCommand):
    help = "Manage POS device keys: register (per store), rotate or revoke. A new key is shown once."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        register = actions.add_parser("register", help="Give a store a new device and print its key once")
        register.add_argument("--store", type=int, required=True, help="Store id")
        register.add_argument("--name", required=True, help="e.g. 'Front counter'")
        for name, text in (("rotate", "Issue a new key; the old one stops at once"), ("revoke", "Stop a key")):
            action = actions.add_parser(name, help=text)
            action.add_argument("--device", type=int, required=True, help="Device id")

    def handle(self, *args, action, **options):
        if action == "register":
            store = Store.objects.filter(pk=options["store"]).first()
            if store is None:
                raise CommandError("No store with this id.")
            issued = register_device(store, options["name"])
        else:
            device = PosDevice.objects.filter(pk=options["device"]).first()
            if device is None:
                raise CommandError("No device with this id.")
            if action == "revoke":
                revoke_device(device)
                self.stdout.write(f"Revoked {device.name} (device {device.pk}).")
                return
            issued = rotate_device_key(device)
        self.stdout.write(f"Device {issued.device.pk} ({issued.device.name}, {issued.device.store.name}).")
        self.stdout.write(f"Key (shown once, store it in the till now): {issued.key}")
