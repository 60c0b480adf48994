from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing import demo as billing_demo
from dashboards import demo as pipeline_demo
from dashboards import demo_audits
from dashboards.demo import DEMO_TOTP_SECRET
from receivables import demo as receivables_demo
from reminders import demo as reminders_demo

# The pipeline's people, customers and deals first; then each app adds its own
# records (each step is idempotent on its own). Reminders come last: the scan
# reads the facts every other step wrote.
DEMO_STEPS = [
    pipeline_demo.seed,
    billing_demo.seed,
    receivables_demo.seed,
    demo_audits.seed,
    reminders_demo.seed,
]


class Command(BaseCommand):
    help = "Load the demo users (password 'demo') and data. Idempotent; refuses with DEBUG off."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with a known password: not with DEBUG off.")
        with transaction.atomic():
            for step in DEMO_STEPS:
                step(stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo ready: log in as rep, rep2, manager or auditor (password demo)."
            )
        )
        self.stdout.write(
            f"  manager's two-factor code: `manage.py demo_code`, or add the key "
            f"{DEMO_TOTP_SECRET} to an authenticator app."
        )
