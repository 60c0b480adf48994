"""Webhook work on its own queue (``webhooks``): never in a page's request,
never behind (or in front of) the reminders' queues. Thin: call a service."""

from celery import shared_task

from hooks import delivery, sources


@shared_task(name="hooks.deliver")
def deliver(delivery_ids: list[int]) -> int:
    """Queued after the commit that wrote these deliveries: send what is due now,
    these first if they are still waiting (another task's batch may have taken them)."""
    return delivery.deliveries_send(ids=delivery_ids).count("delivered") + delivery.deliveries_run()


@shared_task(name="hooks.deliveries_run")
def deliveries_run() -> int:
    """Beat's pick-up: what is due, retrying, or was held by a killed worker."""
    return delivery.deliveries_run()


@shared_task(name="hooks.scan")
def scan() -> dict:
    """Beat's scan for what time alone makes happen (an invoice overdue, a reminder due)."""
    return sources.hooks_scan()
