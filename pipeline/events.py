"""The pipeline's one domain event: ``deal_changed``.

Whatever changes a deal or its money (a promise, a move, a touch, a payment,
an invoice, an audit call) announces it with ``deal_changed_on_commit``; apps
above the pipeline that must react (reminders) connect a receiver in their
``AppConfig.ready``. The pipeline never needs to know who listens.

The signal is sent after the transaction commits, once per deal however many
writes the transaction made to it, and never for a transaction (or a
savepoint) that rolled back. Outside a transaction it is sent at once.
"""

import logging

from asgiref.local import Local
from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent with ``deal_id`` and ``actor_id`` (the person whose action changed the
# deal, None for the system or the payment processor). Sender: ``None``.
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
    """Announce ``deal_changed`` for this deal once the current transaction commits."""
    batch = _current_batch()

    def send() -> None:
        batch.flushing = True
        if deal_id in batch.sent:
            return
        batch.sent.add(deal_id)
        for receiver, result in deal_changed.send_robust(
            sender=None, deal_id=deal_id, actor_id=actor_id
        ):
            if isinstance(result, Exception):
                logger.error(
                    "deal_changed receiver %r failed for deal %s",
                    receiver,
                    deal_id,
                    exc_info=result,
                )

    transaction.on_commit(send)
