"""Races on money, on PostgreSQL row locks: two clerks, one payment; many invoices, no gaps."""

from decimal import Decimal

import pytest
from django.db import transaction

from billing import services
from billing.models import CommissionEntry, Invoice, InvoiceSequence, Payment, PaymentStatus
from pipeline.models import Touch, TouchKind
from pipeline.stages import Stage
from receivables import links
from receivables.models import CustomerResponse
from tests.billing.money import record
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory
from tests.race import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres("row-lock races: SQLite has no row locks"),
]


def test_two_clerks_clearing_one_payment_clear_it_once(rep, manager, teammate):
    deal = DealFactory(rep=rep, deposit_required=False, stage=Stage.DELIVERED)
    payment = record(deal, rep, "1000.00", kind="final")
    other_manager = manager.__class__.objects.get(pk=manager.pk)

    def clear_as(person):
        return lambda: services.payment_clear(payment_id=payment.pk, actor=person)

    results = race(clear_as(manager), clear_as(other_manager))
    cleared = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, services.BillingError)]
    assert len(cleared) == 1 and len(refused) == 1, results
    assert "already cleared" in str(refused[0])
    assert payment.events.filter(to_status=PaymentStatus.CLEARED).count() == 1
    assert CommissionEntry.objects.filter(payment=payment).count() == 1
    deal.refresh_from_db()
    assert deal.stage == Stage.PAYMENT_CLEARED
    assert deal.stage_events.filter(to_stage=Stage.PAYMENT_CLEARED).count() == 1


def test_a_clear_and_a_bounce_at_once_leave_a_consistent_ledger(rep, manager):
    deal = DealFactory(rep=rep, deposit_required=False, stage=Stage.DELIVERED)
    payment = record(deal, rep, "1000.00", kind="final")
    results = race(
        lambda: services.payment_clear(payment_id=payment.pk, actor=manager),
        lambda: services.payment_bounce(payment_id=payment.pk, actor=manager, reason="NSF"),
    )
    assert not any(
        isinstance(r, Exception) and not isinstance(r, services.BillingError) for r in results
    )
    payment.refresh_from_db()
    statuses = list(payment.events.order_by("at", "id").values_list("to_status", flat=True))
    assert statuses[-1] == payment.status
    deal.refresh_from_db()
    covered = payment.status == PaymentStatus.CLEARED
    assert deal.stage == (Stage.PAYMENT_CLEARED if covered else Stage.DELIVERED)
    earned = CommissionEntry.objects.filter(payment=payment).values_list("amount", flat=True)
    assert sum(earned, Decimal("0")) == (Decimal("100.00") if covered else Decimal("0"))


def test_two_payments_racing_past_the_balance_take_only_one(rep):
    deal = DealFactory(rep=rep, deposit_required=False, stage=Stage.DELIVERED)
    results = race(
        lambda: record(deal, rep, "700.00", kind="final"),
        lambda: record(deal, rep, "700.00", kind="final"),
    )
    assert sum(isinstance(r, Payment) for r in results) == 1, results
    assert sum(isinstance(r, services.BillingError) for r in results) == 1
    assert Payment.objects.filter(deal=deal).count() == 1


def test_invoice_numbers_issued_at_once_have_no_gaps_and_no_repeats(rep):
    InvoiceSequence.objects.get_or_create(pk=1)
    start = InvoiceSequence.objects.get(pk=1).last_number
    customer = CustomerFactory(owner=rep)
    deals = [
        DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
        for _ in range(8)
    ]
    results = race(
        *[
            (lambda deal=deal: services.invoice_issue(deal_id=deal.pk, issued_by=rep))
            for deal in deals
        ]
    )
    assert all(isinstance(r, Invoice) for r in results), results
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(start + 1, start + 9))
    assert InvoiceSequence.objects.get(pk=1).last_number == start + 8


def test_two_clicks_of_ive_paid_at_once_record_one_answer(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    with transaction.atomic():  # the invoice number's sequence row is locked
        invoice = InvoiceFactory(deal=deal, amount=Decimal("500.00"))
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)

    def answer():
        return links.customer_respond(link_id=link.pk, kind="paid", reference="TR-42")

    results = race(answer, answer)
    assert all(isinstance(r, links.Answer) for r in results), results
    assert sorted(r.repeated for r in results) == [False, True]
    assert CustomerResponse.objects.count() == 1
    assert Touch.objects.filter(deal=deal, kind=TouchKind.CUSTOMER_LINK).count() == 1


def test_an_answer_racing_a_revoke_is_either_recorded_before_it_or_refused(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    with transaction.atomic():
        invoice = InvoiceFactory(deal=deal, amount=Decimal("500.00"))
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    results = race(
        lambda: links.customer_respond(link_id=link.pk, kind="paid", reference="TR-43"),
        lambda: links.customer_link_revoke(link_id=link.pk, actor=rep),
    )
    link.refresh_from_db()
    assert link.revoked_at is not None
    answered = results[0]
    if isinstance(answered, links.LinkGone):
        assert not CustomerResponse.objects.exists()
    else:
        assert isinstance(answered, links.Answer), results
        assert CustomerResponse.objects.get().created_at <= link.revoked_at
