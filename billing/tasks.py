"""Scheduled billing work: thin tasks that call services."""

from celery import shared_task

from billing import services
from pipeline.models import Customer


@shared_task(name="billing.refresh_standings")
def refresh_standings() -> int:
    """Refresh every customer's standing copy: lateness grows and bounces age out daily."""
    customer_ids = list(
        Customer.objects.filter(deals__isnull=False).distinct().values_list("pk", flat=True)
    )
    for customer_id in customer_ids:
        services.customer_refresh_standing(customer_id=customer_id)
    return len(customer_ids)
