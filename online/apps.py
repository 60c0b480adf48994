from django.apps import AppConfig


class OnlineConfig(AppConfig):
    """Paying online (see ``online/__init__.py``); stands on billing and receivables."""

    name = "online"
    verbose_name = "Paying online"

    def ready(self) -> None:
        # Billing imports no processor: refunds of the processor's payments, and the
        # deals delivered with a card on file, reach online through these seams.
        from online import on_file_receivers, refunds

        refunds.register()
        on_file_receivers.connect()
