"""The board's "Promised vs cleared" chart: cleared money less what went back, in the week
it went back (billing.reports.cleared_money_moves), as the month's per-rep figures count it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import PaymentMethodKind
from billing.reports import team_month_figures
from dashboards.charts import promised_vs_cleared_by_week
from pipeline.models import Deal
from pipeline.stages import Stage
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

THIS_WEEK, THREE_WEEKS_AGO = 0, 3


def cleared(deal, manager, amount, weeks_ago=THIS_WEEK, method=PaymentMethodKind.CHECK):
    at = timezone.now() - timedelta(weeks=weeks_ago)
    payment = services.payment_record(
        deal_id=deal.pk,
        recorded_by=deal.rep,
        kind="instalment",
        method=method,
        amount=Decimal(amount),
        at=at - timedelta(minutes=1),
    )
    return services.payment_clear(payment_id=payment.pk, actor=manager, at=at)


def refund(payment, manager, amount, weeks_ago=THIS_WEEK):
    return services.payment_refund(
        payment_id=payment.pk,
        actor=manager,
        amount=Decimal(amount),
        reason="Customer returned one unit",
        at=timezone.now() - timedelta(weeks=weeks_ago),
    )


def cleared_bar(manager, weeks_ago: int) -> Decimal:
    chart = promised_vs_cleared_by_week(manager, timezone.localdate())
    bar = chart.groups[len(chart.groups) - 1 - weeks_ago].bars[1]
    assert bar.series == "cleared"
    return bar.value


def test_a_refund_lowers_the_cleared_bar_of_its_week_not_of_the_week_the_payment_cleared(
    open_deal, manager
):
    cleared(open_deal, manager, "1000.00")
    earlier = cleared(open_deal, manager, "600.00", weeks_ago=THREE_WEEKS_AGO)
    assert cleared_bar(manager, THIS_WEEK) == Decimal("1000.00")
    refund(earlier, manager, "600.00")
    assert cleared_bar(manager, THIS_WEEK) == Decimal("400.00")
    assert cleared_bar(manager, THREE_WEEKS_AGO) == Decimal("600.00")


def test_a_partial_refund_lowers_the_cleared_bar_by_the_refunded_amount_only(open_deal, manager):
    payment = cleared(open_deal, manager, "1000.00")
    refund(payment, manager, "250.00")
    assert cleared_bar(manager, THIS_WEEK) == Decimal("750.00")


def test_a_refund_the_processor_refused_does_not_lower_the_cleared_bar(
    open_deal, manager, processor
):
    payment = cleared(open_deal, manager, "1000.00", method=PaymentMethodKind.CARD)
    given = refund(payment, manager, "400.00")
    assert cleared_bar(manager, THIS_WEEK) == Decimal("600.00")  # counted while on its way
    services.refund_fail(refund_id=given.pk, failure="insufficient_funds")
    assert cleared_bar(manager, THIS_WEEK) == Decimal("1000.00")


def test_a_refund_refused_in_a_later_week_comes_back_in_the_week_it_was_refused(
    open_deal, manager, processor
):
    payment = cleared(
        open_deal, manager, "1000.00", weeks_ago=THREE_WEEKS_AGO, method=PaymentMethodKind.CARD
    )
    given = refund(payment, manager, "400.00", weeks_ago=THREE_WEEKS_AGO)
    services.refund_fail(refund_id=given.pk, failure="insufficient_funds")
    assert cleared_bar(manager, THREE_WEEKS_AGO) == Decimal("600.00")
    assert cleared_bar(manager, THIS_WEEK) == Decimal("400.00")


def test_a_bounce_after_clearing_lowers_the_week_it_bounced_in(open_deal, manager):
    check = cleared(open_deal, manager, "700.00", weeks_ago=THREE_WEEKS_AGO)
    services.payment_bounce(payment_id=check.pk, actor=manager, reason="Returned by the bank")
    assert cleared_bar(manager, THREE_WEEKS_AGO) == Decimal("700.00")
    assert cleared_bar(manager, THIS_WEEK) == Decimal("-700.00")


def test_a_week_that_gave_back_more_than_cleared_is_written_out_over_a_flat_bar(
    open_deal, manager, manager_client
):
    refund(cleared(open_deal, manager, "900.00", weeks_ago=THREE_WEEKS_AGO), manager, "900.00")
    chart = promised_vs_cleared_by_week(manager, timezone.localdate())
    bar = chart.groups[-1].bars[1]
    assert (bar.value, bar.display, bar.height) == (Decimal("-900.00"), "-900", 0.0)
    assert all(bar.height >= 0 for group in chart.groups for bar in group.bars)
    page = manager_client.get("/board/charts/").text
    assert "cleared: -900" in page
    assert 'height="-' not in page


def test_the_chart_and_the_months_per_rep_figure_agree_on_cleared_money(
    open_deal, rep, teammate, manager
):
    other = DealFactory(
        rep=teammate, amount=Decimal("3000.00"), deposit_required=False, stage=Stage.DELIVERED
    )
    refund(cleared(open_deal, manager, "1000.00"), manager, "250.00")
    cleared(open_deal, manager, "500.00")
    refund(cleared(other, manager, "800.00"), manager, "800.00")
    cleared(other, manager, "100.00")
    month = team_month_figures([rep.pk, teammate.pk], timezone.localdate())
    assert (month[rep.pk].cleared, month[teammate.pk].cleared) == (
        Decimal("1250.00"),
        Decimal("100.00"),
    )
    assert cleared_bar(manager, THIS_WEEK) == month[rep.pk].cleared + month[teammate.pk].cleared


def test_the_chart_costs_two_queries_whatever_the_refunds(
    open_deal, manager, django_assert_num_queries
):
    for amount in ("100.00", "200.00", "300.00"):
        refund(cleared(open_deal, manager, amount), manager, "50.00")
    with django_assert_num_queries(2):
        chart = promised_vs_cleared_by_week(manager, timezone.localdate())
    assert chart.groups[-1].bars[1].value == Decimal("450.00")


def test_cleared_money_stays_on_the_chart_of_the_team_whose_rep_earned_it(
    open_deal, rep, manager, other_rep
):
    cleared(open_deal, manager, "1000.00")
    # The deal moves to another team's rep (an operator in the admin): what cleared
    # before stays with its earner, on the chart as in the month's per-rep figures.
    Deal.objects.filter(pk=open_deal.pk).update(rep=other_rep)
    assert cleared_bar(manager, THIS_WEEK) == Decimal("1000.00")
    assert cleared_bar(other_rep.manager, THIS_WEEK) == Decimal("0.00")
    assert team_month_figures([rep.pk], timezone.localdate())[rep.pk].cleared == Decimal("1000.00")
