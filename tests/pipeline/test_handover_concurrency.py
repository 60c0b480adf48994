"""A rep logs deals at the instant their manager deactivates them (issue 20, §4):
nothing open is left with the leaver. Real threads on PostgreSQL row locks."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline import services, team
from pipeline.models import Customer, Deal
from pipeline.terms import PaymentOption
from tests.factories import CustomerFactory
from tests.race import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres("row-lock races: SQLite has no row locks"),
]


def _log_a_deal(rep, customer, n):
    def call():
        return services.deal_promise(
            rep=rep,
            customer=customer,
            title=f"Deal {n}",
            amount=Decimal("1000.00"),
            payment_option=PaymentOption.INVOICE,
            expected_delivery_date=timezone.localdate() + timedelta(days=20),
            next_step="Call",
            next_step_date=timezone.localdate() + timedelta(days=2),
        )

    return call


def _add_a_customer(rep, n):
    return lambda: services.customer_add(owner=rep, name=f"New customer {n}", phone="555 0100")


@pytest.mark.parametrize("attempt", range(5))
def test_deals_logged_while_the_rep_is_deactivated_never_stay_with_them(
    attempt, manager, leaver, rep
):
    customer = CustomerFactory(owner=leaver, name="Pat Lee")
    results = race(
        lambda: team.user_deactivate(manager=manager, leaver=leaver, successor=rep),
        _log_a_deal(leaver, customer, 1),
        _log_a_deal(leaver, customer, 2),
        _log_a_deal(leaver, customer, 3),
        _add_a_customer(leaver, 1),
    )
    handover = results[0]
    assert isinstance(handover, team.Handover), results
    for result in results[1:]:
        # Written before the handover (and handed over), or refused after it.
        assert isinstance(result, (Deal, Customer, services.RepInactive)), results
    assert not Deal.objects.filter(rep=leaver).open().exists()
    assert not team.customers_left_with(leaver).exists()
    assert team.work_left_with_leavers(manager) == []
    logged = [r for r in results[1:4] if isinstance(r, Deal)]
    assert handover.deals == len(logged)
    for deal in logged:
        assert deal.reassignments.get().from_rep == leaver
        # Still the leaver's sale in the figures.
        assert Deal.objects.get(pk=deal.pk).sold_by_id == leaver.pk
