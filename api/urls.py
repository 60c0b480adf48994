"""/api/v1/: each endpoint behind the gate (token, rate, scope, idempotency); the
docs and the OpenAPI schema are pages for a signed-in person."""

from api.api import api
from api.gate import gate

DOCS = {"api-root", "openapi-json", "openapi-view"}

urlpatterns, app_name, namespace = api.urls
for pattern in urlpatterns:
    if pattern.name not in DOCS:
        pattern.callback = gate(pattern.callback)
