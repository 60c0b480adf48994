"""Reads of the pipeline that span models."""

from datetime import date
from itertools import chain

from django.db.models import Count, Sum
from django.utils import timezone

from pipeline.models import Customer, Deal
from pipeline.stages import NOT_PAID_STAGES, Stage
from pipeline.terms import PaymentHistory, Standing, Terms, standing_from_history, terms_for


def customer_terms(customer: Customer | None, today: date | None = None) -> Terms:
    """The standing and the terms it requires, for a customer (None: a new one).

    Read from the customer's row (one query, so a stale instance does not
    matter): the standing billing learned from their payment history
    (``Customer.standing``) and the manager's allow-invoicing exception in
    force today, which lets a slow payer be invoiced (``terms_for``).
    """
    if customer is None:
        return terms_for(*standing_from_history(PaymentHistory()))
    row = Customer.objects.only(
        "standing", "standing_reason", "invoicing_exception", "invoicing_exception_until"
    ).get(pk=customer.pk)
    note = row.invoicing_exception_on(today or timezone.localdate())
    return terms_for(Standing(row.standing), row.standing_reason, invoicing_exception=note)


def deal_timeline(deal: Deal) -> list:
    """Every stage event, touch and reassignment of a deal, newest first.

    Entries are ``{"kind", "at", "item"}``; the deal page adds billing's terms
    exceptions to them (``billing.templatetags.billing.with_terms_exceptions``).
    """
    events = deal.stage_events.select_related("actor")
    reassignments = deal.reassignments.select_related("from_rep", "to_rep", "actor")
    touches = deal.touches.select_related("author")
    entries = chain(
        ({"kind": "stage", "at": e.at, "item": e} for e in events),
        ({"kind": "touch", "at": t.happened_at, "item": t} for t in touches),
        ({"kind": "reassignment", "at": r.at, "item": r} for r in reassignments),
    )
    return sorted(entries, key=lambda entry: entry["at"], reverse=True)


def pipeline_columns(deals, per_column: int) -> list[dict]:
    """The pipeline board: each open stage with its count, total and first cards.

    One grouped query for the counts and totals, then one small query per
    stage for its most urgent cards (next step first), each an index range
    scan on (rep, stage, next_step_date) that reads only ``per_column`` rows,
    so a rep with thousands of open deals still gets a light page.
    """
    summary = {row["stage"]: row for row in stage_summary(deals.filter(stage__in=NOT_PAID_STAGES))}
    cards = deals.select_related("customer", "rep").order_by("next_step_date", "id")
    columns = []
    for stage in NOT_PAID_STAGES:
        count = summary[stage]["count"]
        shown = list(cards.filter(stage=stage)[:per_column]) if count else []
        columns.append(
            {
                "stage": stage,
                "deals": shown,
                "count": count,
                "total": summary[stage]["total"],
                "more": count - len(shown),
            }
        )
    return columns


def stage_summary(deals) -> list[dict]:
    """Count and sum of deals per stage, in journey order, summed in SQL."""
    rows = {
        row["stage"]: row
        for row in deals.order_by().values("stage").annotate(count=Count("*"), total=Sum("amount"))
    }
    return [
        {
            "stage": stage,
            "count": rows.get(stage, {}).get("count", 0),
            "total": rows.get(stage, {}).get("total") or 0,
        }
        for stage in Stage
    ]
