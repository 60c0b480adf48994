"""Reads about money that span models."""

from billing.policy import PaymentHistory, Terms, standing_from_history, terms_for


def customer_payment_history(customer) -> PaymentHistory:
    """The customer's payment history, as the terms policy needs it."""
    # No money is recorded yet: every customer starts New.
    return PaymentHistory()


def customer_terms(customer) -> Terms:
    """The standing and the terms it requires, for a customer (None: a new one)."""
    history = customer_payment_history(customer) if customer is not None else PaymentHistory()
    standing, reason = standing_from_history(history)
    return terms_for(standing, reason)
