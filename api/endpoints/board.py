"""The Not paid yet board's totals (dashboards.board), for managers."""

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from api.schemas import PROBLEM_CODES, BoardTotalsOut, ProblemOut
from dashboards import totals
from pipeline import access

router = Router(tags=["board"])


@router.get(
    "/board/totals", response={200: BoardTotalsOut, PROBLEM_CODES: ProblemOut}, summary="Totals"
)
def board_totals(request: HttpRequest):
    """Outstanding by stage and aging bucket, and what is rotting: the board's head."""
    access.require_manager(request.user, "The Not paid yet board is for managers.")
    figures = totals.board_totals(request.user, today=timezone.localdate())
    return {
        "count": figures.count,
        "outstanding": figures.outstanding,
        "rotting_count": figures.rotting_count,
        "rotting_outstanding": figures.rotting_sum,
        "by_stage": [
            {"stage": str(row["stage"]), "count": row["count"], "outstanding": row["outstanding"]}
            for row in figures.by_stage
        ],
        "by_bucket": [
            {"bucket": row["bucket"].key, "count": row["count"], "outstanding": row["outstanding"]}
            for row in figures.by_bucket
        ],
    }
