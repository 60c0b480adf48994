"""Receivables: asking the customer for money. Invoice and chase emails, the
managers' chase wording, the customer's own link and answers, statements, PDFs,
DSO and the chase's effect.

Stands on billing (the ledger it reads) and the pipeline; billing never imports
it; reminders and dashboards read it. Its models keep the ``billing_*`` tables
and its pages the ``/billing/…`` paths and ``billing:`` URL names they had.
"""
