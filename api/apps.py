from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The API at /api/v1/ and its tokens: on top of every app, read by nobody
    (README, "API"). Each endpoint checks access with pipeline.access and calls the
    same service the page calls."""

    name = "api"
    verbose_name = "API"
