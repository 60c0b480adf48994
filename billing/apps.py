from django.apps import AppConfig


class BillingConfig(AppConfig):
    """The money ledger (see ``billing/__init__.py``); stands on the pipeline."""

    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here, not at the top: apps.py loads before any app's models.
        from billing import receivers

        # A deal paid on delivery changes its customer's standing; the Team
        # page shows each rep's commission rate (billing.receivers).
        receivers.connect()
