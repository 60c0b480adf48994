from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here, not at the top: apps.py loads before any app's models.
        from billing import receivers
        from billing.selectors import rates_in_force
        from pipeline.team import TeamColumn, register_team_column

        # A deal paid on delivery changes its customer's standing (billing.receivers).
        receivers.connect()
        # Billing's column on pipeline's Team page: pipeline never imports billing.
        register_team_column(
            TeamColumn(
                heading="Commission rate",
                template="billing/_team_rate_cell.html",
                values=rates_in_force,
            )
        )
