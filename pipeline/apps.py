from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """Customers, deals, stages, touches, terms, access: the bottom app."""

    name = "pipeline"
    verbose_name = "Pipeline"

    def ready(self) -> None:
        from pipeline import accounts

        accounts.connect_signals()
