"""Days sales outstanding per rep and per customer (receivables.selectors.dso_report,
/billing/dso/)."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Payment
from receivables.selectors import dso_report
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def _ago(days: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=days)


def _invoice(rep, customer, amount: str, issued_days_ago: int, terms: int = 30):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, amount=Decimal(amount))
    return InvoiceFactory(
        deal=deal,
        amount=Decimal(amount),
        issue_date=_ago(issued_days_ago),
        terms_days=terms,
        due_date=_ago(issued_days_ago) + datetime.timedelta(days=terms),
    )


def _clear(invoice, amount: str, cleared_days_ago: int) -> None:
    payment = PaymentFactory(
        deal=invoice.deal, invoice=invoice, amount=Decimal(amount), status="cleared"
    )
    moment = timezone.now() - datetime.timedelta(days=cleared_days_ago)
    Payment.objects.filter(pk=payment.pk).update(cleared_at=moment)


@pytest.fixture
def book(rep, teammate, customer):
    """Riley: 3,000 invoiced in the window, 1,000 of it open; one invoice paid in 20 days.
    rep2: 900 open, issued 100 days ago (outside the window), overdue."""
    paid = _invoice(rep, customer, "2000.00", issued_days_ago=60)
    _clear(paid, "2000.00", cleared_days_ago=40)  # 20 days from issue to cleared
    _invoice(rep, customer, "1000.00", issued_days_ago=10)
    other = CustomerFactory(owner=teammate, name="Slow Co")
    _invoice(teammate, other, "900.00", issued_days_ago=100)
    return {"other": other}


def _by_name(rows):
    return {row.name: row for row in rows}


def test_dso_is_open_receivables_over_the_windows_sales_times_its_days(manager, rep, book):
    report = dso_report(manager)
    riley = next(row for row in report.reps if row.pk == rep.pk)
    assert riley.open == Decimal("1000.00")
    assert riley.invoiced == Decimal("3000.00")
    assert riley.dso == Decimal("30.0")  # 1000 / 3000 × 90
    assert riley.days_to_pay == Decimal("20.0")
    assert riley.paid_count == 1
    assert riley.open_age == Decimal("10.0")
    assert riley.overdue == Decimal("0")


def test_a_rep_who_invoiced_nothing_lately_has_no_dso_but_shows_the_open_money(
    manager, teammate, book
):
    row = next(row for row in dso_report(manager).reps if row.pk == teammate.pk)
    assert row.dso is None
    assert row.open == row.overdue == Decimal("900.00")
    assert row.overdue_percent == Decimal("100")
    assert row.open_age == Decimal("100.0")


def test_the_team_line_sums_every_rep(manager, book):
    team = dso_report(manager).team
    assert team.open == Decimal("1900.00")
    assert team.invoiced == Decimal("3000.00")
    assert team.dso == Decimal("57.0")


def test_customers_are_listed_most_open_money_first(manager, customer, book):
    customers = dso_report(manager).customers
    assert [c.name for c in customers] == [customer.name, "Slow Co"]
    assert customers[0].open == Decimal("1000.00")


def test_void_invoices_and_other_teams_are_left_out(manager, other_rep, rep, customer):
    mine = _invoice(rep, customer, "500.00", issued_days_ago=5)
    type(mine).objects.filter(pk=mine.pk).update(voided_at=timezone.now(), voided_by=manager)
    _invoice(other_rep, CustomerFactory(owner=other_rep), "800.00", issued_days_ago=5)
    report = dso_report(manager)
    assert report.team.open == Decimal("0") and report.team.invoiced == Decimal("0")
    assert report.customers == []


# --- the page ------------------------------------------------------------------------------


def test_the_manager_sees_the_report_with_its_definition_and_chart(manager_client, book):
    response = manager_client.get("/billing/dso/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "open receivables today ÷ money invoiced in the last 90 days × 90" in body
    assert "30.0 d" in body and "Slow Co" in body
    assert '<svg class="chart"' in body and 'class="bar dso"' in body
    assert " style=" not in body


def test_a_manager_of_another_team_sees_none_of_it(book, other_rep):
    other_manager = other_rep.manager
    body = _client_for(other_manager).get("/billing/dso/").content.decode()
    assert "Slow Co" not in body and "Dana Whitfield" not in body
    assert "$1,000.00" not in body and "$900.00" not in body
    assert "No invoices on your team" in body


def test_reps_and_auditors_may_not_see_the_report(rep_client, auditor_client):
    assert rep_client.get("/billing/dso/").status_code == 403
    assert auditor_client.get("/billing/dso/").status_code == 403


def test_the_report_reads_a_fixed_number_of_queries(
    manager_client, rep, teammate, django_assert_max_num_queries
):
    for index in range(12):
        owner = rep if index % 2 else teammate
        invoice = _invoice(owner, CustomerFactory(owner=owner), "100.00", issued_days_ago=index)
        if index % 3 == 0:
            _clear(invoice, "100.00", cleared_days_ago=0)
    with django_assert_max_num_queries(14):
        assert manager_client.get("/billing/dso/").status_code == 200


def test_a_customer_named_script_is_text_on_the_report(manager_client, rep):
    _invoice(rep, CustomerFactory(owner=rep, name="<script>alert(1)</script>"), "10.00", 3)
    body = manager_client.get("/billing/dso/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
