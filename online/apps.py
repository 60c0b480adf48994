from django.apps import AppConfig


class OnlineConfig(AppConfig):
    """Paying online (see ``online/__init__.py``); stands on billing and receivables."""

    name = "online"
    verbose_name = "Paying online"
