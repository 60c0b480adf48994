"""Celery tasks of the pipeline: thin, they take ids and call a service.

Every task here is idempotent: the scan's writes are compare-and-set and its
inserts are de-duplicated by the database, so a task delivered twice, or run
again after its worker was killed (``acks_late``), changes nothing more.
"""

import logging

from celery import shared_task

from pipeline.reminders import services

logger = logging.getLogger(__name__)


@shared_task(name="pipeline.reminders_scan")
def reminders_scan() -> dict:
    """Beat's one periodic job: create, resolve and mark due; then queue the digests."""
    result = services.reminders_scan()
    recipients = services.reminders_pending_recipients()
    for recipient in recipients:
        reminders_send_digest.delay(recipient)
    logger.info("Reminder scan: %s, %d digests queued", result.as_dict(), len(recipients))
    return result.as_dict()


@shared_task(name="pipeline.reminders_refresh_deal")
def reminders_refresh_deal(deal_id: int, actor_id: int | None = None) -> dict:
    """An event on one deal (promise, move, touch): its reminders now, not in a minute."""
    result = services.reminders_scan(deal_ids=[deal_id], actor_id=actor_id)
    for recipient in services.reminders_pending_recipients():
        reminders_send_digest.delay(recipient)
    return result.as_dict()


@shared_task(name="pipeline.reminders_send_digest")
def reminders_send_digest(recipient: str) -> int:
    return services.reminders_send_digest(recipient=recipient)
