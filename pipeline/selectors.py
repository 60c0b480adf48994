"""Reads of the pipeline that span models."""

from datetime import date
from itertools import chain

from django.db.models import Count, Q, Sum
from django.utils import timezone

from pipeline import keys
from pipeline.changes import deal_changes
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
    """Every stage event, touch, reassignment, change of terms and field edit of a deal,
    newest first.

    Entries are ``{"kind", "at", "item"}``; the deal page adds billing's terms
    exceptions to them (``billing.templatetags.billing.with_terms_exceptions``).
    """
    events = deal.stage_events.select_related("actor")
    reassignments = deal.reassignments.select_related("from_rep", "to_rep", "actor")
    touches = deal.touches.select_related("author")
    terms = deal.terms_changes.select_related("asked_by", "decided_by")
    entries = chain(
        ({"kind": "terms", "at": c.asked_at, "item": c} for c in terms),
        ({"kind": "stage", "at": e.at, "item": e} for e in events),
        ({"kind": "touch", "at": t.happened_at, "item": t} for t in touches),
        ({"kind": "reassignment", "at": r.at, "item": r} for r in reassignments),
        ({"kind": "change", "at": c.at, "item": c} for c in deal_changes(deal)),
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


# --- likely duplicate customers -------------------------------------------
# Two customers are likely the same when their names match ignoring case and
# spaces, or they share an email (any case) or a phone number (its digits):
# the keys of pipeline/keys.py, kept on each customer by the database.


def _duplicate_condition(names: set[str], emails: set[str], phones: set[str]) -> Q:
    condition = Q(pk__in=[])
    if names - {""}:
        condition |= Q(name_key__in=sorted(names - {""}))
    if emails - {""}:
        condition |= Q(email_key__in=sorted(emails - {""}))
    if phones - {""}:
        condition |= Q(phone_key__in=sorted(phones - {""}))
    return condition


def customers_by_contact(visible, *, phone: str = "", email: str = ""):
    """The customers among ``visible`` whose phone has these digits in it (at least
    ``MIN_PHONE_DIGITS``), or whose email or billing email is this one, any case:
    the nav's search box (dashboards.search), keyed as duplicates are."""
    condition = Q(pk__in=[])
    if digits := keys.phone_key(phone):
        condition |= Q(phone_key__contains=digits)
    if email := keys.email_key(email):
        condition |= Q(email_key=email) | Q(billing_email__iexact=email)
    return visible.filter(condition).order_by("name", "id")


def duplicates_among(visible, customers) -> dict[int, list[Customer]]:
    """For each of ``customers`` (a page), the other visible customers likely the same.

    One query for the whole page, whatever its size.
    """
    customers = list(customers)
    if not customers:
        return {}
    own = {
        c.pk: (keys.name_key(c.name), keys.email_key(c.email), keys.phone_key(c.phone))
        for c in customers
    }
    names = {k[0] for k in own.values()}
    emails = {k[1] for k in own.values()}
    phones = {k[2] for k in own.values()}
    candidates = list(
        visible.filter(_duplicate_condition(names, emails, phones))
        .only("pk", "name", "company", "email", "phone", "name_key", "email_key", "phone_key")
        .order_by("name", "id")
    )
    found: dict[int, list[Customer]] = {}
    for customer in customers:
        name, email, phone = own[customer.pk]
        found[customer.pk] = [
            other
            for other in candidates
            if other.pk != customer.pk
            and (
                (name and other.name_key == name)
                or (email and other.email_key == email)
                or (phone and other.phone_key == phone)
            )
        ]
    return found
