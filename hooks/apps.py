from django.apps import AppConfig


class HooksConfig(AppConfig):
    """Cleared's connections out: signed outgoing webhooks (and chat), the calendar feed.

    Stands on pipeline, billing, audits and reminders and reads them; none of
    them imports hooks. Their append-only rows are its sources: ``post_save``
    receivers (hooks.sources) write the outbox inside the writer's transaction.
    """

    name = "hooks"
    verbose_name = "Webhooks and calendar"

    def ready(self) -> None:
        # Imported here, not at the top: apps.py loads before any app's models.
        from hooks import sources

        sources.connect()
