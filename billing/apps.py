from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import receivers

        # A deal paid on delivery changes its customer's standing (billing.receivers).
        receivers.connect()
