"""Two managers refunding one payment at once, on PostgreSQL row locks: never more than it."""

from decimal import Decimal

import pytest

from billing import services
from billing.models import CommissionEntry, Refund
from pipeline.stages import Stage
from tests.billing.money import clear, record
from tests.factories import DealFactory
from tests.race import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres("row-lock races: SQLite has no row locks"),
]


def test_two_managers_refunding_past_the_payment_give_back_only_one(rep, manager):
    deal = DealFactory(rep=rep, deposit_required=False, stage=Stage.DELIVERED)
    payment = clear(record(deal, rep, "1000.00", kind="final"), manager)
    other_manager = manager.__class__.objects.get(pk=manager.pk)

    def refund_as(person):
        return lambda: services.payment_refund(
            payment_id=payment.pk, actor=person, amount=Decimal("600.00"), reason="Returned"
        )

    results = race(refund_as(manager), refund_as(other_manager))
    given = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, services.BillingError)]
    assert len(given) == 1 and len(refused) == 1, results
    assert "left to refund of this payment: $400.00" in str(refused[0])
    assert Refund.objects.filter(payment=payment).count() == 1
    deal.refresh_from_db()
    assert deal.cleared_amount == Decimal("400.00")
    earned = CommissionEntry.objects.filter(payment=payment).values_list("amount", flat=True)
    assert sum(earned, Decimal("0")) == Decimal("40.00")
