import zoneinfo

from django.utils import timezone
from django.utils.cache import patch_cache_control


class UserTimezoneMiddleware:
    """Show times in the signed-in user's own time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.time_zone:
            timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
        else:
            timezone.deactivate()
        return self.get_response(request)


class PrivatePagesNotCachedMiddleware:
    """``Cache-Control: private, no-store`` on every page behind the login.

    A deal, a customer, a board export or an invoice PDF must not be kept by a
    shared proxy, nor by the browser's disk cache after the person logs out.
    Every response of a view that needs the login (all but those marked
    ``login_not_required``) and every response to a signed-in person carries
    it: pages, htmx partials, CSV exports, PDFs, redirects and errors alike.
    Public views decide for themselves (the customer's link page sends it
    too). Static files are answered by WhiteNoise before this runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        private = getattr(request, "_cleared_private_page", False)
        user = getattr(request, "user", None)
        if private or (user is not None and user.is_authenticated):
            patch_cache_control(response, private=True, no_store=True)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        # The flag LoginRequiredMiddleware reads: False only on public views.
        request._cleared_private_page = getattr(view_func, "login_required", True)
