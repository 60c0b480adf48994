"""The Not paid yet board's totals: outstanding by stage, by age, and what is rotting.

Exact at every read, at any number of deals. They come from the summary the
database keeps in every writer's transaction (``pipeline.not_paid``: per rep,
stage and UTC day of the promise, and of the last stage move), so the board
never shows a total older than the last committed write, and a manager's
totals sum a few thousand summary rows, not every unpaid deal.

Ages are computed here, at read time, from the days: a day wholly inside an
aging bucket counts as a block; only the few days a boundary cuts through (the
viewer's midnight 30, 60 and 90 days ago, as UTC days; the rotting limit of
each stage, to the second) are counted from their deals, an index range of a
day's deals. The full scan (``count_totals``) stays as the definition the
tests hold the fast path to.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    DateField,
    DateTimeField,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboards.board import BUCKETS, _start_of, not_paid_yet
from pipeline.compiled import Compiled, Slot, where_key
from pipeline.models import User
from pipeline.not_paid import OUTSTANDING, Axis, NotPaidTotal
from pipeline.stages import NOT_PAID_STAGES, Stage
from pipeline.terms import MONEY, ZERO

EDGE = "edge"  # a summary row a boundary cuts through: counted from its deals instead
AGE_EDGE, ROT_EDGE = "age_edge", "rot_edge"  # the edge days' deals, counted
ROTTING, FRESH = "rotting", "fresh"


def rotting_condition(now: datetime) -> Q:
    """Deals with no movement for longer than their stage's limit (settings)."""
    condition = Q(pk__in=[])
    for stage, cutoff in _rotting_cutoffs(now).items():
        condition |= _rotting_in(stage, cutoff)
    return condition


def _rotting_in(stage: str, cutoff: datetime) -> Q:
    return Q(stage=stage, stage_changed_at__lt=cutoff)


def _rotting_cutoffs(now: datetime) -> dict[str, datetime]:
    return {
        stage: now - timedelta(days=days) for stage, days in settings.CLEARED_ROTTING_DAYS.items()
    }


@dataclass
class BoardTotals:
    by_stage: list[dict]
    by_bucket: list[dict]
    rotting_count: int
    rotting_sum: Decimal
    count: int
    outstanding: Decimal


def board_totals(user: User, today: date | None = None, now: datetime | None = None) -> BoardTotals:
    """The totals of the deals ``user`` sees on the board, exact: one small query.

    ``today`` is the viewer's day (the buckets start at their midnights),
    ``now`` the moment rotting is measured from.
    """
    moments = _moments(today or timezone.localdate(), now or timezone.now())
    team = where_key(NotPaidTotal.objects.visible_to(user))
    if team is None:  # sees no deal (an auditor)
        return _board_totals(_empty())
    # The query's SQL depends on whose deals are read (``team``: the visibility
    # rule's own SQL and parameters) and on the stages that rot, never on the
    # day or the moment: those are its open parameters. Compiled once per
    # team, it costs a board read its SQL and not the ~10 ms of building and
    # compiling its nine parts again (issue 23, "board page / its own SQL").
    key = (team, tuple(settings.CLEARED_ROTTING_DAYS))
    rows = _TOTALS.rows(user, key=key, **moments)
    totals = _empty()
    for stage, source, group, deals, money in rows:
        if source == Axis.PROMISED:
            _add(totals["by_stage"][Stage(stage)], deals, money)
            if group != EDGE:
                _add(totals["by_bucket"][group], deals, money)
        elif source == AGE_EDGE:
            _add(totals["by_bucket"][group], deals, money)
        elif group == ROTTING:  # a summary row wholly rotting, or a rotting edge's deals
            _add(totals["rotting"], deals, money)
    return _board_totals(totals)


def _totals_rows_query(user: User, at: dict) -> QuerySet:
    """The totals' rows, (stage, source, group, n, money): the summary's rows,
    grouped, and the deals of the edge days, one part a day; ``at`` holds the
    moments (``_moments``' names), here the compiled query's open parameters."""
    # One part a day: each is then an index-only range (deal_not_paid_promised,
    # deal_not_paid_moved), where "one day OR another" read every deal's row.
    kept = NotPaidTotal.objects.visible_to(user).annotate(group=_summary_group(at))
    # Each kind of edge part is built once and filtered per day: the filter lands
    # in the WHERE of the grouped query. A rotting edge's deals are all rotting:
    # no bucket to tell apart there.
    team_deals = not_paid_yet(user)
    age_edge = _grouped(team_deals.annotate(group=_bucket(at)), Value(AGE_EDGE))
    rot_edge = _grouped(team_deals.annotate(group=Value(ROTTING)), Value(ROT_EDGE))
    on_age_edges = [
        Q(promised_at__gte=at[f"age_from_{i}"], promised_at__lt=at[f"age_to_{i}"])
        for i in range(len(AGED_BUCKETS))
    ]
    on_rot_edges = [
        _rotting_in(stage, at[f"rot_cutoff_{stage}"])
        & Q(stage_changed_at__gte=at[f"rot_from_{stage}"])
        for stage in settings.CLEARED_ROTTING_DAYS
    ]
    return (
        _grouped(kept, "axis", "deals", "outstanding")
        .union(
            *[age_edge.filter(day) for day in on_age_edges],
            *[rot_edge.filter(day) for day in on_rot_edges],
            all=True,
        )
        .values_list("stage", "source", "group", "n", "money")
    )


# The buckets with an upper bound: each starts at a midnight a boundary cuts through.
AGED_BUCKETS = [bucket for bucket in BUCKETS if bucket.max_days is not None]


def _moments(today: date, now: datetime) -> dict[str, date | datetime]:
    """Every day and moment the totals' query reads, by name.

    For each bounded bucket (newest first): the viewer's midnight it starts at
    (``bucket_from_i``), the UTC day that midnight falls in (``age_day_i``,
    a summary day counted from its deals) and that day's bounds. For each stage
    that rots: the cutoff to the second, its UTC day and that day's start.
    """
    moments = {}
    for i, bucket in enumerate(AGED_BUCKETS):
        starts = _start_of(today - timedelta(days=bucket.max_days))
        day = starts.astimezone(UTC).date()
        moments |= {
            f"bucket_from_{i}": starts,
            f"age_day_{i}": day,
            f"age_from_{i}": _utc_start(day),
            f"age_to_{i}": _utc_start(day, 1),
        }
    for stage, cutoff in _rotting_cutoffs(now).items():
        day = cutoff.astimezone(UTC).date()
        moments |= {
            f"rot_cutoff_{stage}": cutoff,
            f"rot_day_{stage}": day,
            f"rot_from_{stage}": _utc_start(day),
        }
    return moments


def _slots(moments: dict) -> dict[str, Slot]:
    return {
        name: Slot(name, DateTimeField() if isinstance(value, datetime) else DateField())
        for name, value in moments.items()
    }


def count_totals(user: User, today: date | None = None, now: datetime | None = None):
    """The same totals counted from every unpaid deal: what ``board_totals`` must equal."""
    totals = _empty()
    for row in _totals_rows(not_paid_yet(user), today, now):
        _add(totals["by_stage"][Stage(row["stage"])], row["count"], row["outstanding"])
        _add(totals["by_bucket"][row["bucket"]], row["count"], row["outstanding"])
        if row["rotting"]:
            _add(totals["rotting"], row["count"], row["outstanding"])
    return _board_totals(totals)


def _utc_start(day: date, plus_days: int = 0) -> datetime:
    return datetime.combine(day + timedelta(days=plus_days), time.min, tzinfo=UTC)


def _grouped(rows: QuerySet, source, count="pk", money=OUTSTANDING) -> QuerySet:
    """``rows`` as (stage, source, group, n, money): summary rows or deals, summed by group."""
    # count(*), not count(id): the id is not in the edge days' index-only ranges.
    counted = Sum(count) if count != "pk" else Count("*")
    return (
        rows.annotate(source=source if isinstance(source, Value) else F(source))
        .order_by()
        .values("stage", "source", "group")
        # A group has rows, whose amounts are never NULL: no COALESCE needed.
        .annotate(n=counted, money=Sum(money))
    )


def _bucket(at: dict) -> Case:
    """A deal's aging bucket: the first bucket start (a viewer's midnight) it is not before."""
    return Case(
        *[
            When(promised_at__gte=at[f"bucket_from_{i}"], then=Value(bucket.key))
            for i, bucket in enumerate(AGED_BUCKETS)
        ],
        default=Value(BUCKETS[-1].key),
        output_field=CharField(),
    )


def _summary_group(at: dict) -> Case:
    """A summary row's place: its aging bucket (promise days), rotting or fresh
    (move days), or EDGE for a day a boundary cuts through."""
    promised, moved = Q(axis=Axis.PROMISED), Q(axis=Axis.MOVED)
    age_days = [at[f"age_day_{i}"] for i in range(len(AGED_BUCKETS))]
    whens = [When(promised & Q(day__in=age_days), then=Value(EDGE))]
    # A day after a bucket's first UTC day is wholly inside it (buckets newest first).
    for bucket, first_day in zip(AGED_BUCKETS, age_days, strict=True):
        whens.append(When(promised & Q(day__gt=first_day), then=Value(bucket.key)))
    whens.append(When(promised, then=Value(BUCKETS[-1].key)))
    for stage in settings.CLEARED_ROTTING_DAYS:
        day = at[f"rot_day_{stage}"]
        whens.append(When(moved & Q(stage=stage, day=day), then=Value(EDGE)))
        whens.append(When(moved & Q(stage=stage, day__lt=day), then=Value(ROTTING)))
    return Case(*whens, default=Value(FRESH), output_field=CharField())


def _totals_rows(deals: QuerySet, today: date | None, now: datetime | None):
    """The deals grouped by stage, aging bucket and rotting, counted and summed."""
    now = now or timezone.now()
    moments = _moments(today or timezone.localdate(), now)
    rotting = Case(When(rotting_condition(now), then=Value(1)), default=Value(0))
    return list(
        deals.annotate(bucket=_bucket(moments), rotting=rotting)
        .order_by()
        .values("stage", "bucket", "rotting")
        .annotate(
            count=Count("*"),
            outstanding=Coalesce(Sum(OUTSTANDING), Value(ZERO), output_field=MONEY),
        )
    )


def _empty() -> dict:
    return {
        "by_stage": {s: {"stage": s, "count": 0, "outstanding": ZERO} for s in NOT_PAID_STAGES},
        "by_bucket": {b.key: {"bucket": b, "count": 0, "outstanding": ZERO} for b in BUCKETS},
        "rotting": {"count": 0, "outstanding": ZERO},
    }


def _add(group: dict, count: int, outstanding: Decimal) -> None:
    group["count"] += count
    group["outstanding"] += outstanding


def _board_totals(totals: dict) -> BoardTotals:
    by_stage = list(totals["by_stage"].values())
    return BoardTotals(
        by_stage=by_stage,
        by_bucket=list(totals["by_bucket"].values()),
        rotting_count=totals["rotting"]["count"],
        rotting_sum=totals["rotting"]["outstanding"],
        count=sum(group["count"] for group in by_stage),
        outstanding=sum((group["outstanding"] for group in by_stage), ZERO),
    )


_SLOTS = _slots(_moments(date(2000, 1, 1), datetime(2000, 1, 1, tzinfo=UTC)))
# Per process, one compiled query per (team, rotting stages); past 1,024, it starts again.
_TOTALS = Compiled(lambda user: _totals_rows_query(user, _SLOTS))
