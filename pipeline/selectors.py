"""Reads of the pipeline that span models."""

from itertools import chain

from django.db.models import Count, Q, Sum

from billing.selectors import deal_exceptions
from pipeline.models import Deal, User
from pipeline.stages import NOT_PAID_STAGES, Stage


def deal_timeline(deal: Deal) -> list:
    """Every stage event, touch and terms exception of a deal, newest first."""
    events = deal.stage_events.select_related("actor")
    touches = deal.touches.select_related("author")
    exceptions = deal_exceptions(deal)
    entries = chain(
        ({"kind": "stage", "at": e.at, "item": e} for e in events),
        ({"kind": "touch", "at": t.happened_at, "item": t} for t in touches),
        ({"kind": "exception", "at": x.granted_at, "item": x} for x in exceptions),
    )
    return sorted(entries, key=lambda entry: entry["at"], reverse=True)


def deals_by_stage(deals, stages=NOT_PAID_STAGES) -> list[dict]:
    """Columns of a pipeline board: each stage with its deals and their total."""
    columns = {stage: {"stage": stage, "deals": [], "total": 0} for stage in stages}
    for deal in deals:
        column = columns.get(Stage(deal.stage))
        if column is not None:
            column["deals"].append(deal)
            column["total"] += deal.amount
    return list(columns.values())


def stage_summary(deals) -> list[dict]:
    """Count and sum of deals per stage, in journey order, summed in SQL."""
    rows = {
        row["stage"]: row
        for row in deals.order_by().values("stage").annotate(count=Count("id"), total=Sum("amount"))
    }
    return [
        {
            "stage": stage,
            "count": rows.get(stage, {}).get("count", 0),
            "total": rows.get(stage, {}).get("total") or 0,
        }
        for stage in Stage
    ]


def team_of(manager: User):
    return User.objects.filter(Q(manager=manager) | Q(pk=manager.pk)).order_by("username")
