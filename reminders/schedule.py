"""Each deal's next moment (``DealSchedule``): when the engine must look at it again.

The engine (``reminders.services.reminders_evaluate``) writes it whenever it
decides a deal: the earliest moment, after now, at which a rule could change
its decision (each rule reports its own, ``Rule.next_moment``). The minute's
scan reads the deals whose moment came (``schedules_due``, a range of a
partial index), so a scan with nothing due costs one index probe however many
deals are stored. A moment in the past is simply due: a scan after an outage
decides them all, with the whole catch-up window.

Writes that bypass the services, and so the outbox, are caught where they
happen (``reminders.receivers``: the Django admin's log, a person's time zone);
a data fix in SQL ends with ``manage.py reminders_schedule --deals …`` (or
``--all``), which makes those deals due now.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import DateTimeField, F

from pipeline.compiled import Compiled, InBatch, Slot, bulk_insert
from pipeline.models import Deal
from reminders.models import DealSchedule

# The scan's two reads of the schedule run every minute and every batch: each is
# built once (``pipeline.compiled``), its moment and its ids left open.
_HOLD = Compiled(
    lambda: (
        DealSchedule.objects.select_for_update()
        .filter(InBatch(F("deal_id"), "ids"))
        .order_by("deal_id")
        .values_list("deal_id", "next_at")
    )
)
_DUE = Compiled(
    lambda limit: (
        DealSchedule.objects.filter(next_at__lte=Slot("now", DateTimeField()))
        .order_by("next_at")
        .values_list("deal_id")[:limit]
    )
)


def schedules_hold(deal_ids: list[int]) -> dict[int, datetime | None]:
    """Lock these deals' rows for the caller's transaction (PostgreSQL), in id order,
    and return the moments they hold.

    Two workers deciding the same deal at once (the drain and the scan) take
    turns: the second reads the facts the first left, so an older decision
    never overwrites a newer next moment. Elsewhere (SQLite: one writer at a
    time) nothing is read: every moment is written."""
    if not connection.features.has_select_for_update:
        return {}
    return dict(_HOLD.rows(ids=deal_ids))


def schedules_write(next_at: dict[int, datetime | None], held: dict[int, datetime | None]) -> None:
    """Record each decided deal's next moment: one upsert for those that moved (a
    row rewritten for nothing is a dead row the index must step over)."""
    moved = [
        DealSchedule(deal_id=deal_id, next_at=at)
        for deal_id, at in next_at.items()
        if deal_id not in held or held[deal_id] != at
    ]
    bulk_insert(DealSchedule, moved, unique_fields=["deal"], update_fields=["next_at"])


def schedules_due(now: datetime, *, limit: int) -> list[int]:
    """Up to ``limit`` deals whose moment came, earliest first."""
    # In the index's own order, so the LIMIT stops the range scan early whatever
    # the planner guesses of how many are due.
    return [deal_id for (deal_id,) in _DUE.rows(limit, key=limit, now=now)]


def schedules_wake(*, now: datetime, deal_ids: Iterable[int] | None = None, rep_id=None) -> int:
    """Make deals due now: the given ones, a rep's, or (neither) every deal.

    For what changed outside the services (a data fix, a person's time zone)
    and for deals written in bulk (a seed, a restore). One INSERT … SELECT
    that gives a deal without a row its row; returns how many deals."""
    deals = Deal.objects.order_by()
    if deal_ids is not None:
        deals = deals.filter(pk__in=list(deal_ids))
    if rep_id is not None:
        deals = deals.filter(rep_id=rep_id)
    sql, params = deals.values_list("pk").query.sql_with_params()
    table = connection.ops.quote_name(DealSchedule._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (deal_id, next_at) SELECT d.*, %s FROM ({sql}) d "  # noqa: S608
            "WHERE true ON CONFLICT (deal_id) DO UPDATE SET next_at = excluded.next_at",
            [connection.ops.adapt_datetimefield_value(now), *params],
        )
        return cursor.rowcount


def schedules_due_count(now: datetime) -> int:
    return DealSchedule.objects.filter(next_at__lte=now).count()
