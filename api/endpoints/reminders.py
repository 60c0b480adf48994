"""Your reminders: list, done, snooze (reminders.views, as JSON)."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema

from api.paging import DEFAULT_LIMIT, MAX_LIMIT, keyset_page
from api.problems import Problem, field_problem
from api.schemas import ERRORS, ReminderOut, ReminderPage, SnoozeIn
from reminders import selectors, services
from reminders.models import ReminderKind

router = Router(tags=["reminders"])


class ReminderFilters(Schema):
    show: str = "open"
    kind: str = ""
    cursor: str = ""
    limit: int = DEFAULT_LIMIT


@router.get("/reminders", response={200: ReminderPage, **ERRORS}, summary="My reminders")
def reminder_list(request: HttpRequest, filters: Query[ReminderFilters]):
    """Yours and your role's queue; ``show``: open, due, done, all; ``kind`` filters."""
    show = filters.show if filters.show in selectors.REMINDER_FILTERS else "open"
    kind = filters.kind if filters.kind in ReminderKind.values else ""
    reminders = selectors.reminder_list(request.user, show=show, kind=kind)
    limit = min(max(filters.limit, 1), MAX_LIMIT)
    items, cursor = keyset_page(reminders, "id", filters.cursor, limit, int)
    return {"items": items, "next_cursor": cursor}


def _reminder_for(user, pk: int):
    return get_object_or_404(selectors.reminders_for(user), pk=pk)


@router.post("/reminders/{int:reminder_id}/done", response={200: ReminderOut, **ERRORS})
def reminder_done(request: HttpRequest, reminder_id: int):
    reminder = _reminder_for(request.user, reminder_id)
    try:
        services.reminder_done(reminder=reminder, user=request.user)
    except services.ReminderClosed as exc:
        raise Problem(409, f"Already closed: {exc}") from exc
    return _reminder_for(request.user, reminder_id)


@router.post("/reminders/{int:reminder_id}/snooze", response={200: ReminderOut, **ERRORS})
def reminder_snooze(request: HttpRequest, reminder_id: int, payload: SnoozeIn):
    reminder = _reminder_for(request.user, reminder_id)
    until = services.snooze_until(request.user, payload.until)
    if until is None:
        raise field_problem("until", services.SNOOZE_REFUSED)
    try:
        services.reminder_snooze(reminder=reminder, user=request.user, until=until)
    except services.ReminderClosed as exc:
        raise Problem(409, f"Already closed: {exc}") from exc
    return _reminder_for(request.user, reminder_id)
