"""Reminders listen to the pipeline's domain event (connected in ``PipelineConfig.ready``)."""

import logging

from reminders.tasks import reminders_refresh_deal

logger = logging.getLogger(__name__)


def reminders_refresh_on_deal_changed(sender, *, deal_id: int, actor_id=None, **kwargs) -> None:
    """A deal or its money changed (``pipeline.events.deal_changed``, sent after commit):
    bring its reminders up to date now rather than at the next scan.

    If the broker is down this is only logged: the next scan creates and
    resolves the same reminders a minute later.
    """
    try:
        reminders_refresh_deal.apply_async((deal_id, actor_id), retry=False)
    except Exception as exc:  # the broker is down: the scan catches up
        logger.warning("Could not queue reminders for deal %s: %s", deal_id, exc)
