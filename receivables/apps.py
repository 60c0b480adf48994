from django.apps import AppConfig


class ReceivablesConfig(AppConfig):
    """Asking the customer for money: invoice and chase emails, chase wording,
    the customer's link and answers, statements, PDFs, DSO and the chase's effect.

    Stands on billing (the ledger it reads) and pipeline; billing never imports it.
    """

    name = "receivables"
    verbose_name = "Receivables"
