"""Fill the pipeline's copies of billing facts, as billing keeps them from now on.

- the deal's money (``Deal.received_amount``, ``cleared_amount``) from the
  payment ledger (``billing.services.deal_copy_money``);
- the customer's allow-invoicing exception in force (``Customer.invoicing_exception``
  and ``invoicing_exception_until``) from the terms exceptions
  (``billing.services.customer_copy_invoicing_exception``).
"""

from decimal import Decimal

from django.db import migrations
from django.db.models import OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

ZERO = Decimal("0.00")


def copy_money_from_ledger(apps, schema_editor):
    Deal = apps.get_model("pipeline", "Deal")
    Payment = apps.get_model("billing", "Payment")

    def total(*statuses):
        return Coalesce(
            Subquery(
                Payment.objects.filter(deal=OuterRef("pk"), status__in=statuses)
                .order_by()
                .values("deal")
                .annotate(total=Sum("amount"))
                .values("total")
            ),
            Value(ZERO),
        )

    with_money = Deal.objects.filter(Q(payments__isnull=False)).values("pk").distinct()
    Deal.objects.filter(pk__in=with_money).update(
        received_amount=total("pending", "cleared"), cleared_amount=total("cleared")
    )


def copy_invoicing_exceptions(apps, schema_editor):
    Customer = apps.get_model("pipeline", "Customer")
    TermsException = apps.get_model("billing", "TermsException")
    today = timezone.localdate()
    in_force = (
        TermsException.objects.filter(kind="allow_invoicing")
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("granted_by")
        .order_by("customer_id", "-granted_at", "-id")
    )
    seen = set()
    for exception in in_force:
        if exception.customer_id in seen:
            continue  # the newest one in force, as customer_terms read it
        seen.add(exception.customer_id)
        user = exception.granted_by
        granted_by = f"{user.first_name} {user.last_name}".strip() or user.username
        until = f" until {exception.valid_until:%-d %b %Y}" if exception.valid_until else ""
        Customer.objects.filter(pk=exception.customer_id).update(
            invoicing_exception=f"Invoicing allowed by {granted_by}{until}: {exception.reason}"[
                :400
            ],
            invoicing_exception_until=exception.valid_until,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_sequence_and_roles"),
        ("pipeline", "0012_customer_invoicing_exception_copy"),
    ]

    operations = [
        migrations.RunPython(copy_money_from_ledger, migrations.RunPython.noop),
        migrations.RunPython(copy_invoicing_exceptions, migrations.RunPython.noop),
    ]
