"""manage.py fold_board_totals: what beat's hourly ``pipeline.fold_board_totals`` does, now.

Folds the Not paid yet summary's days nobody tells apart any more into one
row per rep, stage and axis (pipeline/not_paid.py, ``fold``). For a database
loaded in bulk (``seed_scale``, 240 days of deals at once) that beat never
ran on: until the first fold, the board's totals sum every day's rows
(95,926 instead of 27,364 rows for a 50-rep team at 1,000,000 deals).
"""

from time import monotonic

from django.core.management.base import BaseCommand

from pipeline.not_paid import fold


class Command(BaseCommand):
    help = "Fold the Not paid yet summary's old days now (what beat does every hour)."

    def handle(self, *args, **options):
        started = monotonic()
        rows = fold()
        self.stdout.write(
            f"fold_board_totals: {rows:,} rows folded or emptied in {monotonic() - started:.1f} s."
        )
