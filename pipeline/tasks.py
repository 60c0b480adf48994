"""Scheduled pipeline work: thin tasks that call the pipeline's functions."""

from celery import shared_task

from pipeline import not_paid


@shared_task(name="pipeline.fold_board_totals")
def fold_board_totals() -> int:
    """Fold the Not paid yet summary's days nobody tells apart any more (pipeline/not_paid.py)."""
    return not_paid.fold()
