"""manage.py rebuild_board_totals: recount the Not paid yet totals from the deals.

Set-based (two grouped INSERT … SELECT), the deals locked against writers
while it runs: the migration's backfill, and what bench runs on a seeded
database. Only needed after a write that bypassed the triggers (TRUNCATE).
"""

from time import monotonic

from django.core.management.base import BaseCommand

from pipeline.not_paid import rebuild


class Command(BaseCommand):
    help = "Replace the Not paid yet board's kept totals by a recount of the deals."

    def handle(self, *args, **options):
        started = monotonic()
        rows = rebuild()
        self.stdout.write(
            f"rebuild_board_totals: {rows:,} rows from the deals in {monotonic() - started:.1f} s."
        )
