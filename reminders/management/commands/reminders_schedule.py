"""Make deals due now and decide them: after a data fix, and to time the backfill.

    manage.py reminders_schedule --deals 12 40   # after an UPDATE in SQL touched these deals
    manage.py reminders_schedule --all           # every deal (the migration's backfill, at once)
    manage.py reminders_schedule                 # decide what is due now, as beat's scan does

Each deal is decided by the engine (``reminders.services``), a batch at a
time, which records its next moment (``reminders.schedule``). Prints how many
deals were decided and how fast.
"""

import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from reminders.schedule import schedules_due_count, schedules_wake
from reminders.services import reminders_scan


class Command(BaseCommand):
    help = "Make deals due now (--deals, --all) and decide every deal whose moment came."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--deals", type=int, nargs="+", help="these deals' ids")
        which.add_argument("--all", action="store_true", help="every deal")

    def handle(self, *args, deals=None, all=False, **options):  # noqa: A002 - the option's name
        now = timezone.now()
        started = time.monotonic()
        if deals or all:
            woken = schedules_wake(now=now, deal_ids=deals)
            self.stdout.write(f"{woken:,} deals made due in {time.monotonic() - started:.1f} s")
        due = schedules_due_count(now)
        started = time.monotonic()
        progress = {"batches": 0}

        def report() -> None:
            progress["batches"] += 1
            if progress["batches"] % 50 == 0:
                elapsed = time.monotonic() - started
                self.stdout.write(f"  … {progress['batches']} batches in {elapsed:.0f} s")

        result = reminders_scan(now=now, sweep=False, on_batch=report)
        took = time.monotonic() - started
        rate = result.deals / took if took else 0
        self.stdout.write(
            f"{result.deals:,} of {due:,} due deals decided in {took:.1f} s ({rate:,.0f} deals/s): "
            f"{result.created:,} reminders created, {result.resolved:,} resolved, "
            f"{result.due:,} due"
        )
