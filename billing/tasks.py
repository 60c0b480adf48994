"""Scheduled billing work: thin tasks that call services."""

from celery import shared_task

from billing import services
from billing.models import ExceptionKind, TermsException
from pipeline.models import Customer


@shared_task(name="billing.refresh_standings")
def refresh_standings() -> int:
    """Refresh every customer's standing copy: lateness grows and bounces age out daily.

    The allow-invoicing copy is taken again too: when the newest exception
    runs out, an older one still valid is the one in force.
    """
    customer_ids = list(
        Customer.objects.filter(deals__isnull=False).distinct().values_list("pk", flat=True)
    )
    for customer_id in customer_ids:
        services.customer_refresh_standing(customer_id=customer_id)
    with_exceptions = (
        TermsException.objects.filter(kind=ExceptionKind.ALLOW_INVOICING)
        .order_by()
        .values_list("customer_id", flat=True)
        .distinct()
    )
    for customer_id in with_exceptions:
        services.customer_copy_invoicing_exception(customer_id=customer_id)
    return len(customer_ids)
