"""Paying online: the customer pays from their link through the card processor (Stripe).

Stands on billing (the ledger: every processor event moves a payment through
``billing.services``, the same code a manager's click runs) and receivables (the
customer's signed link is the authority for the pay page). ``online.processor``
is the one module that talks to Stripe; ``online.localstripe_server`` runs the
fake Stripe server `make run` and the tests use when no real key is set.
"""
