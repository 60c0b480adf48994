from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    """What reads every app and nobody reads: the homes, the Not paid yet board,
    charts, CSV export and import, and the demo loaders (README, "Layout")."""

    name = "dashboards"
    verbose_name = "Dashboards"
