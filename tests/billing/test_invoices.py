"""Invoices: gap-free numbers, terms and due dates, cut-offs, paid state from cleared money."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from billing import services
from billing.models import CreditNote, Invoice, InvoiceState, PaymentKind
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import PaymentOption
from tests.billing.money import clear, record
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def test_invoice_numbers_follow_one_another_across_deals(delivered_deal, rep, customer):
    # Confirmed at audit: a billed deal is invoiced only then (issue 15).
    other = DealFactory(
        rep=rep, customer=customer, deposit_required=False, stage=Stage.AUDIT_CONFIRMED
    )
    first = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    second = services.invoice_issue(deal_id=other.pk, issued_by=rep)
    assert second.number == first.number + 1
    assert first.display_number == f"INV-{first.number:05d}"


def test_a_rolled_back_invoice_gives_its_number_back(delivered_deal, rep, customer):
    first = services.invoice_issue(
        deal_id=delivered_deal.pk, issued_by=rep, amount=Decimal("100.00")
    )
    with pytest.raises(RuntimeError), transaction.atomic():
        services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep, amount=Decimal("1.00"))
        raise RuntimeError("the request failed after the insert")
    again = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep, amount=Decimal("1.00"))
    assert again.number == first.number + 1


def test_terms_give_the_due_date(delivered_deal, rep, settings):
    settings.CLEARED_INVOICE_TERMS_DAYS = 15
    invoice = services.invoice_issue(
        deal_id=delivered_deal.pk, issued_by=rep, issue_date=date(2026, 11, 2)
    )
    assert (invoice.terms_days, invoice.due_date) == (15, date(2026, 11, 17))
    assert invoice.amount == delivered_deal.amount


def test_an_invoice_never_bills_more_than_is_left(deal, rep):
    record(deal, rep, "200.00")  # the deposit, paid without an invoice
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.AUDIT_CONFIRMED)  # invoiced after audit
    with pytest.raises(services.BillingError, match="800.00 is left"):
        services.invoice_issue(deal_id=deal.pk, issued_by=rep, amount=Decimal("900.00"))
    assert services.invoice_issue(deal_id=deal.pk, issued_by=rep).amount == Decimal("800.00")
    with pytest.raises(services.BillingError, match="invoiced or paid already"):
        services.invoice_issue(deal_id=deal.pk, issued_by=rep)


def test_only_invoice_deals_are_invoiced(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.UPFRONT)
    with pytest.raises(services.BillingError, match="not invoiced"):
        services.invoice_issue(deal_id=deal.pk, issued_by=rep)


def test_the_invoice_state_comes_from_cleared_money(delivered_deal, rep, manager):
    invoice = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    # Issued is not sent: "Sent" only once an email left (receivables stamps emailed_at).
    assert invoice.state_for(Decimal("0")) == InvoiceState.ISSUED
    invoice.emailed_at = timezone.now()
    assert invoice.state_for(Decimal("0")) == InvoiceState.SENT
    part = record(delivered_deal, rep, "400.00", kind=PaymentKind.INSTALMENT, invoice=invoice)
    assert invoice.state_for(Decimal("0")) == InvoiceState.SENT  # pending does not count
    clear(part, manager)
    assert invoice.state_for(Decimal("400.00")) == InvoiceState.PARTLY_PAID
    assert invoice.state_for(Decimal("1000.00")) == InvoiceState.PAID


def test_a_manager_voids_an_invoice_without_payments(delivered_deal, rep, manager):
    invoice = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    with pytest.raises(services.NotAllowed):
        services.invoice_void(invoice_id=invoice.pk, actor=rep, reason="typo")
    voided = services.invoice_void(invoice_id=invoice.pk, actor=manager, reason="Wrong amount")
    assert voided.state_for(None) == InvoiceState.VOID
    # A credit note for its amount, from its own series: CN-00001, not an invoice number.
    note = voided.credit_note
    assert (note.display_number, note.amount, note.reason) == (
        "CN-00001",
        invoice.amount,
        "Wrong amount",
    )
    with pytest.raises(services.BillingError, match="void already"):
        services.invoice_void(invoice_id=invoice.pk, actor=manager, reason="again")
    assert CreditNote.objects.count() == 1
    # The amount is free to bill again; the number is not reused.
    again = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    assert again.number == invoice.number + 1
    second = services.invoice_void(invoice_id=again.pk, actor=manager, reason="Wrong again")
    assert second.credit_note.display_number == "CN-00002"  # gap-free, its own series


def test_an_invoice_with_payments_cannot_be_voided(delivered_deal, rep, manager):
    invoice = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    record(delivered_deal, rep, "100.00", kind=PaymentKind.INSTALMENT, invoice=invoice)
    with pytest.raises(services.BillingError, match="cannot be voided"):
        services.invoice_void(invoice_id=invoice.pk, actor=manager, reason="x")


def test_a_plan_splits_the_open_balance_into_dated_instalments(delivered_deal, rep, manager):
    clear(record(delivered_deal, rep, "100.00", kind=PaymentKind.INSTALMENT), manager)
    today = timezone.localdate()
    plan = services.payment_plan_create(
        deal_id=delivered_deal.pk,
        created_by=manager,  # the audit froze the terms (tests/billing/test_plan_frozen.py)
        instalments=[
            (today + timedelta(days=7), Decimal("450.00")),
            (today + timedelta(days=37), Decimal("450.00")),
        ],
        note="Cash crunch",
    )
    first, second = plan.instalments.all()
    assert (first.sequence, first.amount, second.due_date) == (
        1,
        Decimal("450.00"),
        today + timedelta(days=37),
    )
    with pytest.raises(services.BillingError, match="already"):
        services.payment_plan_create(deal_id=delivered_deal.pk, created_by=rep, instalments=[])


def test_a_plan_must_add_up_to_the_open_balance(delivered_deal, rep):
    today = timezone.localdate()
    with pytest.raises(services.BillingError, match="open balance is 1,000.00"):
        services.payment_plan_create(
            deal_id=delivered_deal.pk,
            created_by=rep,
            instalments=[(today + timedelta(days=1), Decimal("500.00"))],
        )
    assert not Invoice.objects.exists()


def test_the_deal_page_flags_an_invoice_past_its_due_date(rep, rep_client):
    import datetime

    from django.utils import timezone

    from billing import services as billing_services
    from tests.factories import DealFactory

    deal = DealFactory(
        rep=rep, payment_option="invoice", deposit_required=False, stage=Stage.DELIVERED
    )
    billing_services.invoice_issue(
        deal_id=deal.pk,
        issued_by=rep,
        terms_days=15,
        issue_date=timezone.localdate() - datetime.timedelta(days=40),
    )
    page = rep_client.get(f"/deals/{deal.pk}/").text
    assert "overdue</span>" in page
