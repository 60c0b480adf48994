"""manage.py find_card_numbers: list stored values that hold a full card number.

Exits 1 when it finds any, so CI and cron jobs notice. What it prints is
masked: the table, the column, the row's primary key and a masked preview.
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.card_scan import find_card_numbers


class Command(BaseCommand):
    help = (
        "Scan every text column of every table in the database (Cleared's and the "
        "libraries': login throttle, users, admin log, sessions, two-factor) for full card "
        "or account numbers "
        "(Luhn-valid, any separator, inside JSON too). Prints table, column, pk and a "
        "masked preview; exits 1 if any is found."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database alias to scan.")

    def handle(self, *args, database: str, **options):
        findings = find_card_numbers(using=database)
        for finding in findings:
            self.stdout.write(str(finding))
        self.stdout.write(
            f"{len(findings)} stored value(s) with a card number in every table ({database})."
        )
        if findings:
            raise CommandError(
                "Card numbers are stored in full: a data migration or a fix of the field is due "
                '(README.md, "Card numbers").'
            )
