"""The API's one scheduled job: forgetting old Idempotency-Key answers (thin: a service does it)."""

import logging

from celery import shared_task

from api.services import idempotency_prune

logger = logging.getLogger(__name__)


@shared_task(name="api.prune_idempotency")
def prune_idempotency() -> int:
    deleted = idempotency_prune()
    if deleted:
        logger.info("Forgot %d Idempotency-Key answers past the window.", deleted)
    return deleted
