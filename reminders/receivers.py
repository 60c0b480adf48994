"""How reminders hook into the apps below them, connected in ``RemindersConfig.ready``.

- the pipeline's domain event ``deal_changed``: the changed deals' reminders
  now, not at the next scan (the outbox says which deals; one drain task
  is queued at a time, however many deals changed);
- a leaver's handover (``pipeline.team``): their open reminders go with their deals.
"""

from asgiref.local import Local

from pipeline.events import deal_changed
from pipeline.team import HandoverPart, register_handover_part
from reminders.selectors import reminders_open_count
from reminders.services import reminders_hand_over
from reminders.tasks import queue_drain

_woken = Local()


def reminders_refresh_on_deal_changed(
    sender, *, deal_id: int, actor_id=None, commit=None, **kwargs
) -> None:
    """A deal or its money changed (``pipeline.events.deal_changed``, sent after commit):
    wake the drain, unless it is already queued; once per commit, however many
    deals it changed (an import of 600 deals is one commit): every deal of the
    commit is in the outbox before the first of them is announced.

    The change itself is in the outbox (written in the writer's transaction),
    so nothing is lost if this fails: the next scan drains it.
    """
    if commit is not None and getattr(_woken, "commit", None) is commit:
        return
    _woken.commit = commit
    queue_drain()


def connect() -> None:
    deal_changed.connect(
        reminders_refresh_on_deal_changed, dispatch_uid="reminders_refresh_on_deal_changed"
    )
    register_handover_part(
        HandoverPart(noun="reminder", count=reminders_open_count, hand_over=reminders_hand_over)
    )
