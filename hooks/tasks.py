"""Webhook work on its own queue (``webhooks``): never in a page's request,
never behind (or in front of) the reminders' queues. Thin: call a service."""

from celery import shared_task

from hooks import delivery, sources


@shared_task(name="hooks.deliver")
def deliver(delivery_ids: list[int]) -> int:
    """Send these deliveries now (queued after the commit that wrote them)."""
    return sum(1 for pk in delivery_ids if delivery.delivery_send(delivery_id=pk))


@shared_task(name="hooks.deliveries_run")
def deliveries_run() -> int:
    """Beat's pick-up: what is due, retrying, or was held by a killed worker."""
    return delivery.deliveries_run()


@shared_task(name="hooks.scan")
def scan() -> dict:
    """Beat's scan for what time alone makes happen (an invoice overdue, a reminder due)."""
    return sources.hooks_scan()
