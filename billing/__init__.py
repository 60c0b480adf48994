"""Billing: the money ledger. Payments and their clearing events, invoices, payment
plans, commission, terms exceptions and the payment webhook.

Stands on the pipeline. Owns three rules, each defined once: money cleared on an
invoice (``billing.models.paid_against``), when the invoice must go and what is
left to invoice (``billing.policy.invoice_deadline``, ``left_to_invoice``) and
money moves the stage (``Deal.cleared_money_move``, applied by
``billing.services.deal_sync_stage``). Asking the customer for the money is
receivables', which stands on billing; billing never imports it.
"""
