from django.contrib import admin
from django.urls import include, path

from api import urls as api_urls
from config.views import healthz

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
    path("reminders/", include("reminders.urls")),
    path("billing/", include("billing.urls")),
    path("", include("dashboards.urls")),
    path("", include("pipeline.urls")),
]
