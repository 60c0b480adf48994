"""Demo reminders, built in bulk after every other app's step.

The demo's deals were written through the services, so each is in the
outbox: the drain decides them all, a batch at a time, in this process (no
task queued per deal), then a sweep covers anything written without an
event. Idempotent like the engine itself: run twice, it creates nothing new.
"""

from reminders.services import reminders_drain, reminders_scan


def seed(stdout=None) -> None:
    drained = reminders_drain()
    swept = reminders_scan()
    if stdout:
        stdout.write(
            f"  reminders: {drained.created + swept.created} new, "
            f"{drained.due + swept.due} due, {drained.resolved + swept.resolved} resolved "
            f"({drained.deals} changed deals decided in bulk)"
        )
