"""/api/v1/: each endpoint behind the gate (token, rate, scope, idempotency); the
docs and the OpenAPI schema are pages for a signed-in person."""

from django.urls import re_path

from api.api import api
from api.gate import gate
from api.problems import problem

DOCS = {"api-root", "openapi-json", "openapi-view"}

urlpatterns, app_name, namespace = api.urls
for pattern in urlpatterns:
    if pattern.name not in DOCS:
        pattern.callback = gate(pattern.callback)


def not_found(request, rest=""):
    """Any other path under /api/v1/: a problem document, not the site's 404 page."""
    return problem(404, "No such endpoint: see /api/v1/docs.")


not_found.login_required = False
not_found.csrf_exempt = True
urlpatterns.append(re_path(r"^(?P<rest>[\s\S]*)$", not_found))
