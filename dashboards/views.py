"""Each role's home: a rep's month and pipeline, a manager's team, an auditor's queue.

Rendered from the data on every request: no page cache (README, "Fast and
never stale"). The reminders panel comes from the reminders context processor.
"""

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing.reports import team_month_figures
from dashboards import board_rows, search, totals
from pipeline import access, selectors
from pipeline.forms import search_text
from pipeline.models import Deal
from pipeline.views import HOME_CARDS_PER_STAGE, MOVE_TARGETS
from reminders.selectors import team_reminders


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_auditor and not (user.is_rep or user.is_manager):
        return render(request, "dashboards/home_auditor.html", {})
    if access.can_manage(user):
        return _manager_home(request)
    context = {
        "columns": selectors.pipeline_columns(
            Deal.objects.visible_to(user), per_column=HOME_CARDS_PER_STAGE
        ),
        "move_stages": MOVE_TARGETS,
    }
    return render(request, "dashboards/home.html", context)


def _manager_home(request: HttpRequest) -> HttpResponse:
    user, now, today = request.user, timezone.now(), timezone.localdate()
    reps = list(access.team_sellers(user).order_by("username"))
    figures = team_month_figures([rep.pk for rep in reps], today)
    others = [rep.pk for rep in reps if rep.pk != user.pk]
    waiting = team_reminders(others, now)
    context = {
        "totals": totals.board_totals(user, today=today),
        "rep_figures": [(rep, figures[rep.pk]) for rep in reps],
        "team_reminders": [(rep, waiting[rep.pk]) for rep in reps if rep.pk in waiting],
        "disputed": board_rows.disputed_rows(user),
        "today_start": timezone.make_aware(datetime.combine(today, datetime.min.time())),
    }
    return render(request, "dashboards/home_manager.html", context)


@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    """The nav's search box: deals and customers found by invoice number, phone or email."""
    access.require_seller(request.user, "Search is for reps and managers.")
    # The one reading of a search box's text (a NUL byte, which PostgreSQL refuses
    # in any text, is left out with a message, not searched for).
    query, search_error = search_text(request.GET)
    results = search.search(request.user, query)
    return render(
        request, "dashboards/search.html", {"results": results, "search_error": search_error}
    )
