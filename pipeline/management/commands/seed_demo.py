from importlib import import_module

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pipeline.demo import DEMO_TOTP_SECRET

# Each app adds its own demo records after the pipeline's; each step is
# idempotent on its own.
DEMO_STEPS = ["pipeline.demo.seed", "billing.demo.seed", "audits.demo.seed"]
# Reminders come last: the scan reads the facts every other step wrote.
DEMO_STEPS.append("reminders.demo.seed")


class Command(BaseCommand):
    help = "Load the demo users (password 'demo') and data. Idempotent; refuses with DEBUG off."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with a known password: not with DEBUG off.")
        with transaction.atomic():
            for dotted in DEMO_STEPS:
                module, name = dotted.rsplit(".", 1)
                getattr(import_module(module), name)(stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo ready: log in as rep, rep2, manager or auditor (password demo)."
            )
        )
        self.stdout.write(
            f"  manager's two-factor code: `manage.py demo_code`, or add the key "
            f"{DEMO_TOTP_SECRET} to an authenticator app."
        )
