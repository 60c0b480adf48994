"""Scheduled work for paying online: thin tasks that call services."""

from celery import shared_task

from online import services


@shared_task(name="online.reconcile")
def reconcile() -> int:
    """Catch up with the processor on payments pending too long (a lost webhook)."""
    return services.reconcile()
