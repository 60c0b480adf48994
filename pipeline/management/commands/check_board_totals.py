"""manage.py check_board_totals: the Not paid yet totals against a recount of the deals.

Exits 1 on any drift (and prints each row that differs), so a cron job or CI
notices; ``rebuild_board_totals`` repairs it. Drift means a write reached the
deals without the triggers (a TRUNCATE, a restore that skipped them).
"""

import sys
from time import monotonic

from django.core.management.base import BaseCommand

from pipeline.not_paid import drift


class Command(BaseCommand):
    help = (
        "Compare the Not paid yet board's kept totals with a full recount of the deals; "
        "exit 1 if they differ (rebuild_board_totals repairs them)."
    )

    def handle(self, *args, **options):
        started = monotonic()
        rows = drift()
        for key, kept, counted in rows:
            rep, stage, axis, day = key
            self.stdout.write(
                f"rep {rep} {stage} by {axis} day {day}: kept {_shown(kept)}, "
                f"recounted {_shown(counted)}"
            )
        elapsed = monotonic() - started
        if rows:
            self.stdout.write(f"{len(rows)} row(s) drifted ({elapsed:.1f} s).")
            sys.exit(1)
        self.stdout.write(f"The board's totals equal a recount of the deals ({elapsed:.1f} s).")


def _shown(figures) -> str:
    return "nothing" if figures is None else f"{figures[0]} deal(s), {figures[1]}"
