"""The customer's statement: open invoices, payments and what is due, by age
(receivables.selectors.statement_context, the page at /billing/customers/<id>/statement/)."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import Deal
from receivables.selectors import aging_bucket, statement_context
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def _days(n: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.fixture
def account(rep, customer):
    """Three invoices: one paid, one partly paid and 40 days late, one not yet due."""
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, amount=Decimal("5000"))
    paid = InvoiceFactory(deal=deal, amount=Decimal("1000.00"), due_date=_days(-50))
    late = InvoiceFactory(deal=deal, amount=Decimal("1500.00"), due_date=_days(-40))
    current = InvoiceFactory(deal=deal, amount=Decimal("700.00"), due_date=_days(10))
    PaymentFactory(deal=deal, invoice=paid, amount=Decimal("1000.00"), status="cleared")
    PaymentFactory(deal=deal, invoice=late, amount=Decimal("500.00"), status="cleared")
    PaymentFactory(
        deal=deal, invoice=late, amount=Decimal("250.00"), status="pending", reference="Chk 12"
    )
    return {"deal": deal, "paid": paid, "late": late, "current": current}


def test_the_statement_lists_open_invoices_with_what_each_still_owes(account, customer):
    statement = statement_context(customer, timezone.localdate())
    invoices = {i.pk: i for i in statement["invoices"]}
    assert set(invoices) == {account["late"].pk, account["current"].pk}  # the paid one is gone
    late = invoices[account["late"].pk]
    assert (late.cleared, late.pending, late.outstanding) == (
        Decimal("500.00"),
        Decimal("250.00"),
        Decimal("1000.00"),  # pending money still counts as owed until it clears
    )
    assert late.days_late == 40 and late.bucket == "31–60 days late"
    assert statement["total_due"] == Decimal("1700.00")
    assert statement["overdue"] == Decimal("1000.00")
    assert statement["pending"] == Decimal("250.00")
    assert dict(statement["aging"]) == {
        "Not yet due": Decimal("700.00"),
        "1–30 days late": Decimal("0"),
        "31–60 days late": Decimal("1000.00"),
        "61–90 days late": Decimal("0"),
        "Over 90 days late": Decimal("0"),
    }
    assert [p.amount for p in statement["payments"]] == [
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("250.00"),
    ]


def test_a_void_invoice_is_not_on_the_statement(account, customer, manager):
    invoice = account["current"]
    type(invoice).objects.filter(pk=invoice.pk).update(
        voided_at=timezone.now(), voided_by=manager, void_reason="Sent twice"
    )
    statement = statement_context(customer, timezone.localdate())
    assert invoice.pk not in {i.pk for i in statement["invoices"]}


def test_a_statement_as_of_an_earlier_day_leaves_out_later_invoices(account, customer):
    statement = statement_context(customer, _days(-45))
    assert {i.pk for i in statement["invoices"]} <= {account["paid"].pk, account["late"].pk}
    assert account["current"].pk not in {i.pk for i in statement["invoices"]}


def test_the_statement_can_be_narrowed_to_the_deals_a_rep_may_see(account, customer, teammate):
    theirs = DealFactory(rep=teammate, customer=customer, deposit_required=False)
    InvoiceFactory(deal=theirs, amount=Decimal("999.00"), due_date=_days(5))
    statement = statement_context(
        customer, timezone.localdate(), deals=Deal.objects.visible_to(account["deal"].rep)
    )
    assert statement["total_due"] == Decimal("1700.00")


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(0, "Not yet due"), (1, "1–30 days late"), (30, "1–30 days late"), (31, "31–60 days late"),
     (90, "61–90 days late"), (91, "Over 90 days late")],
)  # fmt: skip
def test_aging_buckets_have_no_gaps(days, bucket):
    assert aging_bucket(days) == bucket


# --- the page ---------------------------------------------------------------------------


def _url(customer) -> str:
    return f"/billing/customers/{customer.pk}/statement/"


def test_the_rep_sees_the_printable_statement(rep_client, account, customer):
    response = rep_client.get(_url(customer))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Statement" in body and "$1,700.00" in body and "$1,000.00" in body
    assert "40 days late" in body
    assert "css/invoice.css" in body and "data-print" in body
    assert " style=" not in body and "<script>" not in body


def test_the_manager_of_the_team_sees_it(manager_client, account, customer):
    assert manager_client.get(_url(customer)).status_code == 200


def test_another_teams_rep_and_an_auditor_get_404(other_rep_client, auditor_client, customer):
    assert other_rep_client.get(_url(customer)).status_code == 404
    assert auditor_client.get(_url(customer)).status_code == 404


def test_a_forged_customer_id_is_404(rep_client):
    assert rep_client.get("/billing/customers/999999/statement/").status_code == 404


def test_the_statement_reads_a_fixed_number_of_queries(
    rep_client, rep, customer, django_assert_max_num_queries
):
    for _ in range(8):
        deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
        invoice = InvoiceFactory(deal=deal, amount=Decimal("100.00"), due_date=_days(-3))
        PaymentFactory(deal=deal, invoice=invoice, amount=Decimal("40.00"), status="cleared")
    with django_assert_max_num_queries(8):
        assert rep_client.get(_url(customer)).status_code == 200


def test_a_customer_named_script_is_text_on_the_statement(rep_client, rep):
    evil = CustomerFactory(owner=rep, name="<script>alert(1)</script>", company="")
    deal = DealFactory(rep=rep, customer=evil, deposit_required=False, title="<i>x</i>")
    InvoiceFactory(deal=deal, amount=Decimal("10.00"), due_date=_days(1))
    body = rep_client.get(_url(evil)).content.decode()
    assert "<script>alert(1)</script>" not in body and "<i>x</i>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_customer_page_links_to_the_statement(rep_client, customer):
    body = rep_client.get(customer.get_absolute_url()).content.decode()
    assert _url(customer) in body


def test_the_statement_is_also_a_pdf_from_the_same_template(rep_client, account, customer):
    import io

    from pypdf import PdfReader

    response = rep_client.get(f"/billing/customers/{customer.pk}/statement/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Statement" in text and "1,700.00" in text
    assert account["late"].display_number in text


def test_another_teams_rep_gets_404_for_the_pdf_too(other_rep_client, customer):
    url = f"/billing/customers/{customer.pk}/statement/pdf/"
    assert other_rep_client.get(url).status_code == 404
