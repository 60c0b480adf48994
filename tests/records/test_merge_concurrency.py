"""A merge while a payment is recorded on one of the absorbed customer's deals (PostgreSQL)."""

from decimal import Decimal

import pytest

from billing.models import Payment
from dashboards.merging import customer_merge
from pipeline.models import Customer, Deal
from pipeline.sameness import CustomerMerge
from tests.billing.money import record
from tests.factories import CustomerFactory, DealFactory
from tests.race import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres("row-lock races: SQLite has no row locks"),
]


@pytest.mark.parametrize("attempt", range(3))
def test_a_payment_recorded_while_merging_lands_on_the_survivor_and_nothing_deadlocks(
    rep, teammate, manager, attempt
):
    dana = CustomerFactory(owner=rep, name="Dana Whitfield", phone="555 300 0001")
    copy = CustomerFactory(owner=teammate, name="Dana W", phone="555 300 0001")
    deal = DealFactory(rep=teammate, customer=copy, deposit_required=False)
    results = race(
        lambda: customer_merge(survivor_id=dana.pk, absorbed_id=copy.pk, actor=manager),
        lambda: record(deal, teammate, "300.00", kind="final"),
    )
    assert isinstance(results[0], CustomerMerge), results
    assert isinstance(results[1], Payment), results
    assert Deal.objects.get(pk=deal.pk).customer_id == dana.pk
    assert Payment.objects.filter(deal__customer=dana).count() == 1
    assert Deal.objects.get(pk=deal.pk).received_amount == Decimal("300.00")
    assert not Customer.objects.filter(pk=copy.pk).exists()
