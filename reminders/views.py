"""The reminders panel, the nav badge, the /reminders/ list and the two actions."""

from datetime import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from reminders import selectors, services
from reminders.models import Reminder, ReminderKind

REMINDERS_PER_PAGE = 25
PANEL = "reminders/panel.html#panel"
BADGE = "reminders/badge.html#badge"


def _get_reminder_for(user, pk: int) -> Reminder:
    """The reminder, if it is this user's own or their role queue's; a 404 otherwise."""
    return get_object_or_404(selectors.reminders_for(user), pk=pk)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
def reminder_panel(request: HttpRequest) -> HttpResponse:
    """The home panel alone, for htmx polls: 204 (no swap) when nothing changed.

    A poll carries the version it shows (``?v=``); any other client gets an
    ETag and a 304 for an unchanged panel.
    """
    user, now = request.user, timezone.now()
    # Every open home polls this: one indexed query answers "unchanged".
    version = selectors.panel_version(user, now)
    etag = f'"{version}"'
    if request.GET.get("v") == version:
        return _no_store(HttpResponse(status=204))
    if etag in request.headers.get("If-None-Match", ""):
        return _no_store(HttpResponseNotModified())
    panel = selectors.reminder_panel(user, now, version=version)
    response = _render_panel(request, panel)
    response["ETag"] = f'"{panel.version}"'
    if request.htmx:
        # What moved the reminders (a payment cleared, a bounce, a new deal) may have
        # moved the home's figures too: they refresh on this event (home.html).
        response["HX-Trigger"] = "reminders-changed"
    return _no_store(response)


def _render_panel(request: HttpRequest, panel, status: int = 200, error: str = "") -> HttpResponse:
    context = {
        "reminders_panel": panel,
        "reminders_error": error,
        "reminders_due_count": min(panel.due_count, selectors.BADGE_CAP + 1),
        # The badge in the nav follows the panel (an out-of-band swap).
        "badge_oob": True,
    }
    return render(request, PANEL, context, status=status)


@require_GET
def reminder_badge(request: HttpRequest) -> HttpResponse:
    """The nav badge alone: 204 when its count (``?n=``) did not change."""
    count = selectors.reminders_due_count(request.user)
    if request.GET.get("n") == str(count):
        return _no_store(HttpResponse(status=204))
    return _no_store(render(request, BADGE, {"reminders_due_count": count}))


def reminder_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "open")
    if show not in selectors.REMINDER_FILTERS:
        show = "open"
    kind = request.GET.get("kind", "")
    if kind not in ReminderKind.values:
        kind = ""
    reminders = selectors.reminder_list(request.user, show=show, kind=kind)
    page = Paginator(reminders, REMINDERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "show": show,
        "kind": kind,
        "filters": [(key, label) for key, (label, _) in selectors.REMINDER_FILTERS.items()],
        "kinds": ReminderKind.choices,
        "now": timezone.now(),
    }
    return render(request, "reminders/list.html", context)


def _after_action(request: HttpRequest) -> HttpResponse:
    if request.htmx:
        return _render_panel(request, selectors.reminder_panel(request.user))
    # Back to the page the action came from: a path on this site, never a
    # view name or another site (redirect() would try "next" as a view name).
    target = request.POST.get("next", "")
    if not (
        target.startswith("/")
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        target = reverse("reminder_list")
    return HttpResponseRedirect(target)


@require_POST
def reminder_done(request: HttpRequest, pk: int) -> HttpResponse:
    reminder = _get_reminder_for(request.user, pk)
    try:
        services.reminder_done(reminder=reminder, user=request.user)
    except services.ReminderClosed as exc:
        messages.info(request, f"Already closed: {exc}")
    else:
        if not request.htmx:
            messages.success(request, f"Done: {reminder.get_kind_display()} — {reminder.deal}.")
    return _after_action(request)


def _snooze_until(request: HttpRequest) -> datetime | None:
    """The snooze the user chose: an hour, tomorrow morning, or a time they picked."""
    choice = request.POST.get("until", "")
    if choice == "at":
        choice = request.POST.get("at", "")
    return services.snooze_until(request.user, choice)


@require_POST
def reminder_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    reminder = _get_reminder_for(request.user, pk)
    until = _snooze_until(request)
    if until is None:
        error = services.SNOOZE_REFUSED
        if request.htmx:
            panel = selectors.reminder_panel(request.user)
            return _render_panel(request, panel, status=422, error=error)
        messages.warning(request, error)
        return _after_action(request)
    try:
        services.reminder_snooze(reminder=reminder, user=request.user, until=until)
    except services.ReminderClosed as exc:
        messages.info(request, f"Already closed: {exc}")
    else:
        if not request.htmx:
            local = timezone.localtime(until)
            messages.success(request, f"Snoozed until {local:%a %d %b, %H:%M}.")
    return _after_action(request)
