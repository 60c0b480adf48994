"""The billing panels other apps' pages include: the deal's money, the customer's history,
the terms exceptions on a deal's timeline, a rep's month.

The pipeline's pages get billing's parts here, through their templates, so
the pipeline's code never imports billing.
"""

from django import template
from django.conf import settings

from billing import reports, selectors
from billing.models import Invoice, Payment, Refund
from pipeline.access import can_manage
from pipeline.changes import describe

register = template.Library()


@register.simple_tag
def deal_money(deal):
    """``{% deal_money deal as money %}``: everything the deal's money panel shows."""
    return selectors.deal_money(deal)


@register.simple_tag
def customer_money(customer):
    """``{% customer_money customer as history %}``: the standing's facts and the exceptions."""
    return {
        "history": selectors.customer_payment_history(customer),
        "exceptions": selectors.customer_exceptions(customer),
        "window": settings.CLEARED_BOUNCE_WINDOW_DAYS,
    }


@register.simple_tag
def with_terms_exceptions(timeline, deal):
    """``{% with_terms_exceptions timeline deal as timeline %}``: the deal's timeline
    (``pipeline.selectors.deal_timeline``) with the terms exceptions that shaped
    it (kind "exception"), newest first."""
    exceptions = (
        {"kind": "exception", "at": x.granted_at, "item": x}
        for x in selectors.deal_exceptions(deal)
    )
    return sorted([*timeline, *exceptions], key=lambda entry: entry["at"], reverse=True)


@register.simple_tag
def with_money_changes(timeline, deal):
    """``{% with_money_changes timeline deal as timeline %}``: the deal's timeline with
    the recorded changes of its payments and invoices (a status moved, a void),
    kind "change", and its refunds, kind "refund", newest first (pipeline/history.py keeps them)."""
    rows = [
        *Payment.history.filter(deal_id=deal.pk, history_type="~").select_related("history_user"),
        *Invoice.history.filter(deal_id=deal.pk, history_type="~").select_related("history_user"),
    ]
    changes = ({"kind": "change", "at": c.at, "item": c} for c in describe(rows))
    refunds = (
        {"kind": "refund", "at": r.at, "item": r}
        for r in Refund.objects.filter(deal_id=deal.pk).select_related("actor", "payment")
    )
    return sorted([*timeline, *changes, *refunds], key=lambda entry: entry["at"], reverse=True)


@register.simple_tag
def rep_month_figures(rep):
    """``{% rep_month_figures user as figures %}``: a rep's promised, pending, cleared, earned."""
    return reports.rep_month_figures(rep)


@register.filter
def percent(rate) -> str:
    """A rate as a percentage: 0.1250 → 12.5%."""
    return f"{(rate * 100).normalize():f}%"


@register.filter
def can_clear(user) -> bool:
    return can_manage(user)
