"""Celery tasks of the reminders: thin, they call a service.

Three jobs, each single-flight (``reminders.models.Job``): a second worker
handed a job that runs returns at once, and the broker holds at most one
message per job however many events arrive.

- ``reminders_scan``: beat's heartbeat, every REMINDERS_SCAN_SECONDS, on its
  own queue (``heartbeat``) so no backlog of other work delays it, and
  without an expiry: a late scan still runs. It drains the outbox, decides
  the deals whose next moment came (``reminders.schedule``), marks due, and
  queues the digests. There is no hourly sweep: after a gap, every moment
  missed is simply due.
- ``reminders_drain``: woken by ``deal_changed`` (``reminders.receivers``):
  the changed deals' reminders in batches, now rather than at the next scan.
- ``reminders_send_digests``: every pending recipient's digest, each claimed
  by compare-and-set under a short lease.

Every task is idempotent: writes are compare-and-set and inserts are
de-duplicated by the database, so a task delivered twice, or run again after
its worker was killed (``acks_late``), changes nothing more.
"""

import logging

from celery import shared_task
from django.utils import timezone

from reminders import services

logger = logging.getLogger(__name__)

SCAN, DRAIN, DIGESTS = "scan", "drain", "digests"


@shared_task(name="reminders.reminders_scan")
def reminders_scan() -> dict:
    """Beat's heartbeat: the outbox, what time calls for, what is due; then the digests."""
    with services.job_run(SCAN) as run:
        if run is None:
            logger.info("Reminder scan: another scan is running, this one returns.")
            return {"skipped": "another scan is running"}
        now = timezone.now()
        # What is due goes out first: the deals whose moment came (all of them
        # after an outage, or the backfill of a new install) must not hold up
        # what time has already made due.
        due_first = services.reminders_mark_due(now=now)
        if due_first:
            queue_digests()
        drained = services.reminders_drain(now=now, on_batch=run.renew)
        scanned = services.reminders_scan(now=now, sweep=False, on_batch=run.renew)
        queued = queue_digests()
        services.reminders_scan_mark(now=now)
        run.result = {
            "due first": due_first,
            "changed deals": drained.as_dict(),
            "by time": scanned.as_dict(),
            "digests queued": queued,
        }
        logger.info(
            "Reminder scan: %d due at once; %d changed deals (%d created, %d resolved, %d due); "
            "%d deals by time (%d created, %d resolved, %d due); digests %s",
            due_first,
            drained.deals, drained.created, drained.resolved, drained.due,
            scanned.deals, scanned.created, scanned.resolved, scanned.due,
            "queued" if queued else "not needed",
        )  # fmt: skip
        return run.result


@shared_task(name="reminders.reminders_drain")
def reminders_drain() -> dict:
    """The changed deals' reminders, now: queued at most once at a time."""
    # Taken off the queue: an event from now on may queue the next drain.
    services.job_unmark_queued(DRAIN)
    with services.job_run(DRAIN) as run:
        if run is None:
            return {"skipped": "another drain is running"}
        drained = services.reminders_drain(on_batch=run.renew)
        run.result = drained.as_dict()
        if drained.due:
            queue_digests()
        if drained.deals:
            logger.info("Reminders of %d changed deals: %s", drained.deals, run.result)
        return run.result


@shared_task(name="reminders.reminders_send_digests")
def reminders_send_digests() -> int:
    services.job_unmark_queued(DIGESTS)
    with services.job_run(DIGESTS) as run:
        if run is None:
            return 0
        sent = services.reminders_send_digests(on_each=run.renew)
        run.result = {"sent": sent}
        return sent


def queue_once(name: str, task) -> bool:
    """Queue ``task`` unless a message for it is already in the broker.

    If the broker is down this is only logged: the next scan does the work.
    """
    if not services.job_mark_queued(name):
        return False
    try:
        task.apply_async(retry=False)
    except Exception as exc:  # the broker is down: the scan catches up
        services.job_unmark_queued(name)
        logger.warning("Could not queue %s: %s", name, exc)
        return False
    return True


def queue_digests() -> bool:
    if not services.reminders_pending_recipients():
        return False
    return queue_once(DIGESTS, reminders_send_digests)


def queue_drain() -> bool:
    return queue_once(DRAIN, reminders_drain)
