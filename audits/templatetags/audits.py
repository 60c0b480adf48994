"""Audit panels that live on other apps' pages (the deal page, the auditor's home)."""

from datetime import timedelta

from django import template
from django.utils import timezone

from audits import selectors, services

register = template.Library()


@register.simple_tag
def deal_audit(deal, user=None) -> dict:
    """The deal's latest audit and whether it can be wrapped up, for the deal page."""
    if not deal.needs_audit:
        return {"needed": False}
    audit = selectors.latest_audit(deal)
    refusal = None if audit and audit.is_open else services.wrap_up_refusal(deal)
    panel = {"needed": True, "audit": audit, "refusal": refusal}
    if audit is not None and audit.awaits_decision:
        disputed = [a for a in audit.attempts.all() if a.outcome == "disputed"]
        panel["disputed_notes"] = disputed[0].notes if disputed else ""
        panel["may_decide"] = services.may_decide(user, deal) if user else False
    return panel


@register.simple_tag
def with_audit_entries(deal, timeline: list) -> list:
    """The deal's timeline with its audit calls and dispute decisions merged in, newest first.

    The pipeline builds the timeline without knowing audits; the deal page
    adds the audit's entries here (what the auditor heard, what the manager decided).
    """
    entries = list(timeline)
    for audit in selectors.audits_for_timeline(deal):
        for attempt in audit.attempts.all():
            if attempt.outcome in ("disputed", "declined") or audit.state == "flaked":
                entries.append({"kind": "audit_call", "at": attempt.at, "item": attempt})
        if audit.decided_at:
            entries.append({"kind": "audit_decision", "at": audit.decided_at, "item": audit})
    return sorted(entries, key=lambda entry: entry["at"], reverse=True)


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
