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
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboards.board import BUCKETS, _start_of, not_paid_yet
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
    today = today or timezone.localdate()
    now = now or timezone.now()
    age_edges = _age_edges(today)
    cutoffs = _rotting_cutoffs(now)
    rot_edges = {stage: cutoff.astimezone(UTC).date() for stage, cutoff in cutoffs.items()}
    on_age_edges, on_rot_edges = _on_edges(age_edges, cutoffs)
    # One query: the summary's rows, grouped, and the deals of the edge days, one
    # part a day: each is then an index-only range (deal_not_paid_promised,
    # deal_not_paid_moved), where "one day OR another" read every deal's row.
    kept = NotPaidTotal.objects.visible_to(user).annotate(
        group=_summary_group(age_edges, rot_edges)
    )
    # Each kind of edge part is built once and filtered per day: the filter lands
    # in the WHERE of the grouped query (building a part is most of its cost).
    # A rotting edge's deals are all rotting: no bucket to tell apart there.
    team_deals = not_paid_yet(user)
    age_edge = _grouped(team_deals.annotate(group=_bucket(today)), Value(AGE_EDGE))
    rot_edge = _grouped(team_deals.annotate(group=Value(ROTTING)), Value(ROT_EDGE))
    rows = _grouped(kept, "axis", "deals", "outstanding").union(
        *[age_edge.filter(day) for day in on_age_edges],
        *[rot_edge.filter(day) for day in on_rot_edges],
        all=True,
    )
    totals = _empty()
    for stage, source, group, deals, money in rows.values_list(
        "stage", "source", "group", "n", "money"
    ):
        if source == Axis.PROMISED:
            _add(totals["by_stage"][Stage(stage)], deals, money)
            if group != EDGE:
                _add(totals["by_bucket"][group], deals, money)
        elif source == AGE_EDGE:
            _add(totals["by_bucket"][group], deals, money)
        elif group == ROTTING:  # a summary row wholly rotting, or a rotting edge's deals
            _add(totals["rotting"], deals, money)
    return _board_totals(totals)


def count_totals(user: User, today: date | None = None, now: datetime | None = None):
    """The same totals counted from every unpaid deal: what ``board_totals`` must equal."""
    totals = _empty()
    for row in _totals_rows(not_paid_yet(user), today, now):
        _add(totals["by_stage"][Stage(row["stage"])], row["count"], row["outstanding"])
        _add(totals["by_bucket"][row["bucket"]], row["count"], row["outstanding"])
        if row["rotting"]:
            _add(totals["rotting"], row["count"], row["outstanding"])
    return _board_totals(totals)


def _age_edges(today: date) -> list[date]:
    """The UTC days in which a bucket's first moment (the viewer's midnight) falls."""
    return [
        _start_of(today - timedelta(days=bucket.max_days)).astimezone(UTC).date()
        for bucket in BUCKETS
        if bucket.max_days is not None
    ]


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


def _bucket(today: date) -> Case:
    """A deal's aging bucket: the first promise-date bound it passes."""
    return Case(
        *[
            When(promised_at__gte=_start_of(today - timedelta(days=b.max_days)), then=Value(b.key))
            for b in BUCKETS
            if b.max_days is not None
        ],
        default=Value(BUCKETS[-1].key),
        output_field=CharField(),
    )


def _on_edges(age_edges: list[date], cutoffs: dict[str, datetime]) -> tuple[list[Q], list[Q]]:
    """Deals promised on each aging edge day; the rotting deals of each stage
    last moved on its rotting edge day (the UTC day of its cutoff)."""
    on_age_edges = [
        Q(promised_at__gte=_utc_start(day), promised_at__lt=_utc_start(day, 1)) for day in age_edges
    ]
    on_rot_edges = [
        _rotting_in(stage, cutoff)
        & Q(stage_changed_at__gte=_utc_start(cutoff.astimezone(UTC).date()))
        for stage, cutoff in cutoffs.items()
    ]
    return on_age_edges, on_rot_edges


def _summary_group(age_edges: list[date], rot_edges: dict[str, date]) -> Case:
    """A summary row's place: its aging bucket (promise days), rotting or fresh
    (move days), or EDGE for a day a boundary cuts through."""
    promised, moved = Q(axis=Axis.PROMISED), Q(axis=Axis.MOVED)
    whens = [When(promised & Q(day__in=age_edges), then=Value(EDGE))]
    # A day after a bucket's first UTC day is wholly inside it (buckets newest first).
    for bucket, first_day in zip(BUCKETS, age_edges, strict=False):
        whens.append(When(promised & Q(day__gt=first_day), then=Value(bucket.key)))
    whens.append(When(promised, then=Value(BUCKETS[-1].key)))
    for stage, day in rot_edges.items():
        whens.append(When(moved & Q(stage=stage, day=day), then=Value(EDGE)))
        whens.append(When(moved & Q(stage=stage, day__lt=day), then=Value(ROTTING)))
    return Case(*whens, default=Value(FRESH), output_field=CharField())


def _totals_rows(deals: QuerySet, today: date | None, now: datetime | None):
    """The deals grouped by stage, aging bucket and rotting, counted and summed."""
    today = today or timezone.localdate()
    now = now or timezone.now()
    rotting = Case(When(rotting_condition(now), then=Value(1)), default=Value(0))
    return list(
        deals.annotate(bucket=_bucket(today), rotting=rotting)
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
