from django import template

from dashboards.board import bucket_for_age
from reminders.models import ReminderKind

register = template.Library()


@register.filter
def aging_bucket(days: int) -> str:
    return bucket_for_age(days).key


@register.filter
def reminder_kind_label(kind: str | None) -> str:
    """A reminder kind's words ("Payment overdue"), for a kind read as a plain value."""
    return ReminderKind(kind).label if kind in ReminderKind.values else ""
