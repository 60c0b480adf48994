"""Demo reminders: the scan run once over the demo deals, after every other app's step.

Idempotent like the scan itself: run twice, it creates nothing new.
"""

from reminders.services import reminders_scan


def seed(stdout=None) -> None:
    result = reminders_scan()
    if stdout:
        stdout.write(
            f"  reminders: {result.created} new, {result.due} due, {result.resolved} resolved"
        )
