"""Cleared money in a period, less what went back (billing.reports.cleared_money_moves):
a refund lowers the month it was given in, a refused one comes back, and the month's
per-rep cleared figure and its commission agree with it."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing import services
from billing.models import CommissionEntry, CommissionKind, PaymentMethodKind
from billing.reports import cleared_money_moves, month_bounds, rep_month_figures

pytestmark = pytest.mark.django_db


def _mid_month(months_ago: int) -> datetime:
    """Noon on the 15th, ``months_ago`` months back: far from any month's edge."""
    day = timezone.localdate().replace(day=15)
    for _ in range(months_ago):
        day = (day.replace(day=1) - timedelta(days=1)).replace(day=15)
    return timezone.make_aware(datetime.combine(day, datetime.min.time()) + timedelta(hours=12))


def cleared(deal, by, manager, amount, at, method=PaymentMethodKind.CHECK):
    payment = services.payment_record(
        deal_id=deal.pk,
        recorded_by=by,
        kind="instalment",
        method=method,
        amount=Decimal(amount),
        at=at - timedelta(hours=1),
    )
    return services.payment_clear(payment_id=payment.pk, actor=manager, at=at)


def refund(payment, manager, amount, at):
    return services.payment_refund(
        payment_id=payment.pk, actor=manager, amount=Decimal(amount), reason="Returned", at=at
    )


def month(at: datetime) -> date:
    return timezone.localdate(at)


def test_a_refund_lowers_the_month_it_was_given_in_not_the_month_the_payment_cleared(
    open_deal, rep, manager
):
    cleared_at, refunded_at = _mid_month(2), _mid_month(1)
    payment = cleared(open_deal, rep, manager, "1000.00", cleared_at)
    refund(payment, manager, "400.00", refunded_at)
    then = rep_month_figures(rep, month(cleared_at))
    later = rep_month_figures(rep, month(refunded_at))
    assert (then.cleared, then.earned) == (Decimal("1000.00"), Decimal("100.00"))
    assert (later.cleared, later.earned) == (Decimal("-400.00"), Decimal("-40.00"))


def test_a_partial_refund_in_the_month_takes_off_the_refunded_amount_only(open_deal, rep, manager):
    now = timezone.now()
    refund(cleared(open_deal, rep, manager, "1000.00", now), manager, "250.00", now)
    cleared(open_deal, rep, manager, "300.00", now)
    figures = rep_month_figures(rep)
    assert (figures.cleared, figures.earned) == (Decimal("1050.00"), Decimal("105.00"))


def test_the_months_cleared_figure_is_the_commission_base_net_of_refunds(open_deal, rep, manager):
    now = timezone.now()
    refund(cleared(open_deal, rep, manager, "800.00", now), manager, "800.00", now)
    kinds = set(CommissionEntry.objects.values_list("kind", flat=True))
    assert kinds == {CommissionKind.EARNED, CommissionKind.REFUND}
    base = CommissionEntry.objects.aggregate(total=Sum("base"))["total"]
    assert rep_month_figures(rep).cleared == base == Decimal("0.00")


def test_a_refund_the_processor_refused_lowers_nothing_in_its_month(
    open_deal, rep, manager, processor
):
    now = timezone.now()
    payment = cleared(open_deal, rep, manager, "1000.00", now, method=PaymentMethodKind.CARD)
    given = refund(payment, manager, "400.00", now)
    assert rep_month_figures(rep).cleared == Decimal("600.00")  # counted while on its way
    assert services.refund_fail(refund_id=given.pk, failure="insufficient_funds") is True
    figures = rep_month_figures(rep)
    assert (figures.cleared, figures.earned) == (Decimal("1000.00"), Decimal("100.00"))


def test_a_refund_refused_in_a_later_month_comes_back_in_that_month(
    open_deal, rep, manager, processor
):
    written, refused = _mid_month(2), _mid_month(1)
    payment = cleared(open_deal, rep, manager, "1000.00", written, method=PaymentMethodKind.CARD)
    given = refund(payment, manager, "400.00", written)
    services.refund_fail(refund_id=given.pk, failure="insufficient_funds", at=refused)
    assert rep_month_figures(rep, month(written)).cleared == Decimal("600.00")
    assert rep_month_figures(rep, month(refused)).cleared == Decimal("400.00")


def test_a_refund_refused_after_a_charge_back_earns_nothing_again(
    open_deal, rep, manager, processor
):
    now = timezone.now()
    payment = cleared(open_deal, rep, manager, "1000.00", now, method=PaymentMethodKind.CARD)
    given = refund(payment, manager, "400.00", now)
    services.payment_charge_back(payment_id=payment.pk, actor=manager, reason="Disputed")
    assert services.refund_fail(refund_id=given.pk, failure="charge_disputed") is True
    figures = rep_month_figures(rep)
    assert (figures.cleared, figures.earned) == (Decimal("0.00"), Decimal("0.00"))


def test_cleared_money_moves_count_from_the_first_moment_up_to_not_including_the_end(
    open_deal, rep, manager
):
    start, end = month_bounds(month(_mid_month(1)))
    cleared(open_deal, rep, manager, "100.00", start)
    cleared(open_deal, rep, manager, "200.00", end)
    assert list(cleared_money_moves(start, end).values_list("base", flat=True)) == [
        Decimal("100.00")
    ]
    assert cleared_money_moves(start).count() == 2
