"""Celery tasks of the reminders: thin, they take ids and call a service.

Every task here is idempotent: the scan's writes are compare-and-set and its
inserts are de-duplicated by the database, so a task delivered twice, or run
again after its worker was killed (``acks_late``), changes nothing more.
"""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from reminders import services

logger = logging.getLogger(__name__)


def _is_sweep(now: datetime, previous: datetime | None) -> bool:
    """A sweep once per REMINDERS_SWEEP_MINUTES, and after any gap in the scans.

    ``previous`` is when any worker last scanned (a row in the database, so
    every worker process agrees): a worker or broker outage makes the next
    scan a sweep, which catches up on everything missed.
    """
    interval = settings.REMINDERS_SCAN_SECONDS
    first_of_period = now.timestamp() % (settings.REMINDERS_SWEEP_MINUTES * 60) < interval
    gap = previous is None or (now - previous).total_seconds() > 2 * interval
    return first_of_period or gap


@shared_task(name="reminders.reminders_scan")
def reminders_scan() -> dict:
    """Beat's one periodic job: create, resolve and mark due; then queue the digests."""
    now = timezone.now()
    sweep = _is_sweep(now, services.reminders_scan_mark(now=now))
    # What is due goes out first: a long sweep must not hold up the digests.
    if services.reminders_mark_due(now=now):
        _queue_digests()
    result = services.reminders_scan(now=now, sweep=sweep)
    recipients = _queue_digests()
    logger.info(
        "Reminder %s: %s, %d digests queued",
        "sweep" if sweep else "scan",
        result.as_dict(),
        len(recipients),
    )
    return result.as_dict()


def _queue_digests() -> list[str]:
    recipients = services.reminders_pending_recipients()
    for recipient in recipients:
        reminders_send_digest.delay(recipient)
    return recipients


@shared_task(name="reminders.reminders_refresh_deal")
def reminders_refresh_deal(deal_id: int, actor_id: int | None = None) -> dict:
    """An event on one deal (promise, move, touch): its reminders now, not in a minute."""
    result = services.reminders_scan(deal_ids=[deal_id], actor_id=actor_id)
    _queue_digests()
    return result.as_dict()


@shared_task(name="reminders.reminders_send_digest")
def reminders_send_digest(recipient: str) -> int:
    return services.reminders_send_digest(recipient=recipient)
