from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.health import health


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Which part is down, for load balancers, docker-compose and `make run` (config/health.py).

    503 only when the database is down: that is when this process cannot serve pages.
    """
    report, serving = health()
    return JsonResponse(report, status=200 if serving else 503)
