"""Audit panels that live on other apps' pages (the deal page, the auditor's home)."""

from datetime import timedelta

from django import template
from django.utils import timezone

from audits import selectors, services

register = template.Library()


@register.simple_tag
def deal_audit(deal) -> dict:
    """The deal's latest audit and whether it can be wrapped up, for the deal page."""
    if not deal.needs_audit:
        return {"needed": False}
    audit = selectors.latest_audit(deal)
    refusal = None if audit and audit.is_open else services.wrap_up_refusal(deal)
    return {"needed": True, "audit": audit, "refusal": refusal}


@register.simple_tag
def audit_queue_summary(user) -> dict:
    """Counts per section of the auditor's queue, for their home page."""
    sections = selectors.audit_queue(auditor=user, now=timezone.now())
    urgent = sections["due_now"] + sections["overdue"]
    return {name: len(audits) for name, audits in sections.items()} | {
        "next_call": urgent[0] if urgent else None
    }


@register.filter
def duration(value: timedelta | None) -> str:
    """A timedelta in words a manager reads at a glance: 3 d 4 h, 5 h 20 min, 12 min."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 60 * 24)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"
