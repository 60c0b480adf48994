"""Watching the domain event ``deal_changed`` in tests."""

from contextlib import contextmanager

from django.test import TestCase

from pipeline.events import deal_changed


@contextmanager
def announced():
    """The ``deal_changed`` events the block announces, as (deal_id, actor_id) pairs.

    The block's on-commit callbacks run when it ends, as if its work had
    committed (the test's own transaction never does).
    """
    sent: list[tuple[int, int | None]] = []

    def receiver(sender, *, deal_id, actor_id, **kwargs):
        sent.append((deal_id, actor_id))

    deal_changed.connect(receiver, weak=False, dispatch_uid="tests.events.announced")
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            yield sent
    finally:
        deal_changed.disconnect(dispatch_uid="tests.events.announced")
