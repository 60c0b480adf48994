"""The Activity page (managers: their team; operators: everything)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboards import activity
from pipeline import access


@require_GET
def activity_view(request: HttpRequest) -> HttpResponse:
    access.require_manager(request.user, "The Activity page is for managers.")
    filters = activity.ActivityFilters.from_query(request.GET)
    context = {
        "filters": filters,
        "page": activity.activity_page(request.user, filters, request.GET.get("page")),
        "people": activity.people_to_filter(request.user),
        "types": activity.TYPE_CHOICES,
    }
    template = "dashboards/activity.html#results" if request.htmx else "dashboards/activity.html"
    return render(request, template, context)
