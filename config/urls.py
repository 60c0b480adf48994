from django.contrib import admin
from django.urls import include, path

from api import urls as api_urls
from billing import urls as billing_urls
from config.views import healthz
from receivables import urls as receivables_urls

urlpatterns = [
    path("accounts/", include("pipeline.account_urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path(
        "api/v1/",
        include((api_urls.urlpatterns, api_urls.app_name), namespace=api_urls.namespace),
    ),
    path("accounts/security/api-tokens/", include("api.token_urls")),
    path("audits/", include("audits.urls")),
    path("online/", include("online.urls")),
    path("reminders/", include("reminders.urls")),
    # The card on file (online/on_file_urls.py): staff buttons and the customer's pages.
    path("online/card/", include("online.on_file_urls")),
    # Receivables' pages keep billing's paths and "billing:" names (receivables/urls.py).
    path(
        "billing/",
        include((billing_urls.urlpatterns + receivables_urls.urlpatterns, "billing")),
    ),
    path("", include("hooks.urls")),
    path("", include("dashboards.urls")),
    path("", include("pipeline.urls")),
]
