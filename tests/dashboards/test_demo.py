"""The demo's money is real: every stage with money behind it, and payments in every state."""

import pytest
from django.db.models import Sum

from billing import demo as billing_demo
from billing.models import (
    CommissionEntry,
    Invoice,
    Payment,
    PaymentMethodKind,
    PaymentPlan,
    PaymentStatus,
)
from dashboards import demo as pipeline_demo
from pipeline.models import Deal
from pipeline.stages import Stage

pytestmark = pytest.mark.django_db


def test_the_demo_has_payments_in_every_state_and_is_idempotent():
    pipeline_demo.seed()
    billing_demo.seed()
    billing_demo.seed()
    statuses = set(Payment.objects.values_list("status", flat=True))
    assert statuses == set(PaymentStatus.values)
    bounced = Payment.objects.get(status=PaymentStatus.BOUNCED)
    assert bounced.method == PaymentMethodKind.CHECK
    assert PaymentPlan.objects.count() == 1
    assert Invoice.objects.exists() and CommissionEntry.objects.exists()
    for deal in Deal.objects.filter(stage=Stage.PAYMENT_CLEARED):
        cleared = deal.payments.filter(status=PaymentStatus.CLEARED).aggregate(t=Sum("amount"))
        assert cleared["t"] == deal.amount == deal.cleared_amount
    for deal in Deal.objects.filter(stage=Stage.DEPOSIT):
        assert deal.payments.exists() or deal.payment_methods.exists()
