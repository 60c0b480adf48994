from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline"

    def ready(self) -> None:
        from pipeline import accounts, freshness
        from pipeline.events import deal_changed
        from reminders.receivers import reminders_refresh_on_deal_changed

        freshness.connect_signals()
        accounts.connect_signals()
        # Reminders wake up when a deal or its money changed (pipeline.events).
        deal_changed.connect(
            reminders_refresh_on_deal_changed, dispatch_uid="reminders_refresh_on_deal_changed"
        )
