"""How reminders hook into the apps below them, connected in ``RemindersConfig.ready``.

- the pipeline's domain event ``deal_changed``: the deal's reminders now,
  not at the next scan;
- a leaver's handover (``pipeline.team``): their open reminders go with their deals.
"""

import logging

from pipeline.events import deal_changed
from pipeline.team import HandoverPart, register_handover_part
from reminders.selectors import reminders_open_count
from reminders.services import reminders_hand_over
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


def connect() -> None:
    deal_changed.connect(
        reminders_refresh_on_deal_changed, dispatch_uid="reminders_refresh_on_deal_changed"
    )
    register_handover_part(
        HandoverPart(noun="reminder", count=reminders_open_count, hand_over=reminders_hand_over)
    )
