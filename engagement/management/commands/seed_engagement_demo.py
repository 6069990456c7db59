"""Load the engagement demo (offers, an audience, a draft campaign); run after seed_demo."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engagement.demo import seed_engagement_demo


class Command(BaseCommand):
    help = "Create demo offers, an audience and a draft campaign for the demo merchants."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Allow in production (you almost never want this).")

    def handle(self, *args, **options):
        if settings.IS_PRODUCTION and not options["force"]:
            raise CommandError("Refusing to load demo data with TESSERA_ENV=production (use --force if you mean it).")
        titles = seed_engagement_demo()
        if not titles:
            raise CommandError("Run seed_demo first: the demo merchants are missing.")
        self.stdout.write("Engagement demo ready: offers " + ", ".join(titles) + "; a draft campaign to schedule.")
