from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline"

    def ready(self) -> None:
        from pipeline import accounts, freshness

        freshness.connect_signals()
        accounts.connect_signals()
