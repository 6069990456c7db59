"""Write a self-signed DEVELOPMENT pass-signing set to the paths in settings.APPLE_WALLET.

Never use it in production: Wallet on a device only trusts passes signed with a Pass Type ID
certificate that Apple issued, chained to Apple's WWDR G4 intermediate.
"""
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wallet.passes.apple.certificates import generate_dev_set


class Command(BaseCommand):
    help = (
        "DEVELOPMENT ONLY: write a stand-in WWDR CA, a pass certificate it signed (UID=pass type id, "
        "OU=team id) and its key to the APPLE_WALLET paths. Refuses to overwrite without --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Overwrite existing files")

    def handle(self, *args, **options):
        if getattr(settings, "IS_PRODUCTION", False):
            raise CommandError("Refusing to write development pass certificates in production.")
        config = settings.APPLE_WALLET
        targets = {
            "wwdr_pem": Path(config["WWDR_CERTIFICATE_PATH"]),
            "certificate_pem": Path(config["CERTIFICATE_PATH"]),
            "key_pem": Path(config["KEY_PATH"]),
        }
        existing = [str(path) for path in targets.values() if path.exists()]
        if existing and not options["force"]:
            raise CommandError(f"Already present (use --force to overwrite): {', '.join(existing)}")
        dev_set = generate_dev_set(
            config["PASS_TYPE_IDENTIFIER"], config["TEAM_IDENTIFIER"], key_password=config.get("KEY_PASSWORD") or ""
        )
        for attribute, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(getattr(dev_set, attribute))
        os.chmod(targets["key_pem"], 0o600)
        for path in targets.values():
            self.stdout.write(f"wrote {path}")
        self.stdout.write(self.style.WARNING("Development only: Apple Wallet rejects passes signed with this set."))
