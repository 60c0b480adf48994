"""The pipeline's one domain event: ``deal_changed``.

Whatever changes a deal or its money (a promise, a move, a touch, a payment,
an invoice, an audit call) announces it with ``deal_changed_on_commit``; apps
above the pipeline that must react (reminders) connect a receiver in their
``AppConfig.ready``. The pipeline never needs to know who listens.

The signal is sent after the transaction commits, once per deal however many
writes the transaction made to it, and never for a transaction (or a
savepoint) that rolled back. Outside a transaction it is sent at once.

A signal sent after a commit can be lost (the process dies between the two),
so the change is also written down, in the writer's own transaction, in the
outbox ``DealChange``: one row per deal, claimed by a listener that must
never miss a change (the reminders) with ``deal_changes_claim`` and let go of
with ``deal_changes_done``. The signal says "catch up now"; the outbox says
what to catch up on.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from asgiref.local import Local
from django.db import connection, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from pipeline.models import DealChange

logger = logging.getLogger(__name__)

# Sent with ``deal_id``, ``actor_id`` (the person whose action changed the
# deal, None for the system or the payment processor) and ``commit`` (an
# object that is the same for every deal one commit announces: a receiver
# whose work covers every deal at once does it once per commit). Sender: ``None``.
deal_changed = Signal()


class _Batch:
    """The deals already announced by the commit being flushed.

    Each announcement registers its own ``on_commit`` callback, so a
    savepoint or a transaction that rolls back takes its callbacks with it
    (Django discards them); the batch only remembers which deals its
    callbacks have sent, so a deal is announced once per commit.
    """

    def __init__(self):
        self.sent: set[int] = set()
        self.flushing = False


_state = Local()


def _current_batch() -> _Batch:
    batch = getattr(_state, "batch", None)
    # A batch whose callbacks have started running belongs to a committed
    # transaction: the next one starts afresh. A batch whose transaction
    # rolled back never ran anything, so reusing it changes nothing.
    if batch is None or batch.flushing:
        batch = _state.batch = _Batch()
    return batch


def deal_changed_on_commit(*, deal_id: int, actor_id: int | None = None) -> None:
    """Write the change to the outbox now, in the caller's transaction, and announce
    ``deal_changed`` for this deal once that transaction commits."""
    DealChange.objects.bulk_create(
        [DealChange(deal_id=deal_id, changed_at=timezone.now(), actor_id=actor_id)],
        update_conflicts=True,
        unique_fields=["deal"],
        # A deal that changes again while a worker holds it is free at once: a
        # second worker may decide it anew (the engine is idempotent), and the
        # first one's release leaves it (``deal_changes_done``).
        update_fields=["changed_at", "actor", "claimed_until"],
    )
    batch = _current_batch()

    def send() -> None:
        batch.flushing = True
        if deal_id in batch.sent:
            return
        batch.sent.add(deal_id)
        for receiver, result in deal_changed.send_robust(
            sender=None, deal_id=deal_id, actor_id=actor_id, commit=batch
        ):
            if isinstance(result, Exception):
                logger.error(
                    "deal_changed receiver %r failed for deal %s",
                    receiver,
                    deal_id,
                    exc_info=result,
                )

    transaction.on_commit(send)


# --- the outbox ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedChange:
    deal_id: int
    changed_at: datetime
    actor_id: int | None


def deal_changes_claim(*, limit: int, lease: timedelta) -> list[ClaimedChange]:
    """Claim up to ``limit`` changed deals, oldest change first, for ``lease``.

    A row is free when nobody holds it or its holder's lease ran out (a killed
    worker). On PostgreSQL two workers skip each other's rows
    (``SKIP LOCKED``); elsewhere the UPDATE's own condition is the
    compare-and-set. Return what this caller now holds.
    """
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    with transaction.atomic():
        rows = DealChange.objects.filter(free).order_by("changed_at")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        picked = list(rows.values_list("deal_id", "changed_at", "actor_id")[:limit])
        if not picked:
            return []
        DealChange.objects.filter(free, deal_id__in=[row[0] for row in picked]).update(
            claimed_until=now + lease
        )
    return [ClaimedChange(*row) for row in picked]


def deal_changes_done(claimed: list[ClaimedChange], *, chunk: int = 100) -> int:
    """Let go of claimed changes: each row goes only if its deal did not change
    again since it was claimed (``changed_at`` as claimed); a newer change stays
    for the next claim. Returns how many rows went."""
    gone = 0
    for start in range(0, len(claimed), chunk):
        part = claimed[start : start + chunk]
        same = reduce(or_, (Q(deal_id=c.deal_id, changed_at=c.changed_at) for c in part))
        gone += DealChange.objects.filter(same).delete()[0]
    return gone


def deal_changes_pending() -> int:
    """How many deals changed and wait for their listeners (the health page, tests)."""
    return DealChange.objects.count()
