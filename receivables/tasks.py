"""Scheduled work for asking the customer for money: thin tasks that call services.

Their registered names stay the ones they had in billing (``billing.*``): messages
already queued and the beat schedule (config/settings.py) keep finding them.
"""

from celery import shared_task

from receivables import sending


@shared_task(name="billing.customer_email_send")
def customer_email_send_task(email_id: int) -> str:
    """Send one customer email (an invoice, a payment reminder) a rep asked for."""
    return sending.customer_email_send(email_id=email_id)


@shared_task(name="billing.customer_emails_run")
def customer_emails_run() -> int:
    """Every minute: queue the automatic chase rungs, send what is due, retry what failed."""
    return sending.customer_emails_run()
