from django.apps import AppConfig


class RemindersConfig(AppConfig):
    """Follow-up reminders: the engine (rows, scan, digests, panel) and each kind's rule.

    Stands on pipeline, billing, receivables and audits and reads them directly;
    none of them imports reminders. They wake reminders through ``pipeline.events.deal_changed``.
    """

    name = "reminders"
    verbose_name = "Reminders"

    def ready(self) -> None:
        # Imported here, not at the top: apps.py loads before any app's models.
        from reminders import receivers

        receivers.connect()
