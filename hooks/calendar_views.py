"""The calendar address: made and revoked from the Security page; the feed itself."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from hooks import calendar_feed as calendar

# The new address, from the POST that made it to the page that shows it once.
NEW_FEED_SESSION_KEY = "hooks_new_calendar_url"


@require_POST
def calendar_feed_new(request: HttpRequest) -> HttpResponse:
    """A new address (the old one stops working), shown once on the next page."""
    token = calendar.calendar_feed_create(user=request.user)
    request.session[NEW_FEED_SESSION_KEY] = calendar.calendar_feed_url(token)
    return redirect("hooks:calendar_feed_created")


@never_cache
def calendar_feed_created(request: HttpRequest) -> HttpResponse:
    feed_url = request.session.pop(NEW_FEED_SESSION_KEY, None)
    if feed_url is None:
        return redirect("account_security")
    return render(request, "hooks/calendar_created.html", {"feed_url": feed_url})


@require_POST
def calendar_feed_revoke(request: HttpRequest) -> HttpResponse:
    if calendar.calendar_feed_revoke(user=request.user):
        messages.success(request, "Your calendar address is revoked: it shows nothing now.")
    return redirect("account_security")


@login_not_required
@never_cache
@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The ICS: the secret in the URL is the credential; anything else is a bare 404."""
    user = calendar.calendar_feed_user(token)
    if user is None:
        raise Http404("No such calendar.")
    response = HttpResponse(
        calendar.calendar_ics(user=user), content_type="text/calendar; charset=utf-8"
    )
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Disposition"] = 'inline; filename="cleared.ics"'
    return response
