from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "Pipeline"

    def ready(self) -> None:
        from pipeline import accounts
        from pipeline.events import deal_changed
        from pipeline.reminders.receivers import reminders_refresh_on_deal_changed

        accounts.connect_signals()
        # Reminders wake up when a deal or its money changed (pipeline.events).
        deal_changed.connect(
            reminders_refresh_on_deal_changed, dispatch_uid="reminders_refresh_on_deal_changed"
        )
