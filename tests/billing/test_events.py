"""Billing keeps the pipeline's copies of its facts and announces deal_changed; no re-entry."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services
from billing.models import PaymentKind, PaymentMethodKind
from pipeline import services as pipeline_services
from pipeline.models import Customer, Deal
from pipeline.selectors import customer_terms
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, Standing
from tests.billing.money import bounce, clear, record
from tests.events import announced
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def _locks_of_deal(queries, deal) -> int:
    return sum(
        1
        for q in queries
        if 'FROM "pipeline_deal"' in q["sql"]
        and "FOR UPDATE" in q["sql"]
        and f'"pipeline_deal"."id" = {deal.pk}' in q["sql"]
    )


def _bounce_watched(deal, rep, manager):
    """Clear a payment of ``deal``, then bounce it, counting what the bounce called."""
    payment = clear(record(deal, rep, "1000.00", kind=PaymentKind.FINAL), manager)
    assert Deal.objects.get(pk=deal.pk).stage == Stage.PAYMENT_CLEARED
    sync = mock.patch("billing.services.payments.deal_sync_stage", wraps=services.deal_sync_stage)
    move = mock.patch("billing.services.standing.deal_move", wraps=services.standing.deal_move)
    standing = mock.patch(
        "billing.services.standing.customer_refresh_standing",
        wraps=services.customer_refresh_standing,
    )
    with (
        sync as synced,
        move as moved,
        standing as refreshed,
        announced() as sent,
        CaptureQueriesContext(connection) as queries,
    ):
        bounce(payment, manager)
    return synced, moved, refreshed, sent, queries.captured_queries


def test_one_bounce_is_one_pass_through_the_stage_machine_one_standing_refresh_one_event(
    delivered_deal, rep, manager
):
    synced, moved, refreshed, sent, _ = _bounce_watched(delivered_deal, rep, manager)
    assert synced.call_count == 1  # deal_move no longer calls back into billing
    assert moved.call_count == 1  # Payment cleared -> Delivered, once
    assert refreshed.call_count == 1
    assert sent == [(delivered_deal.pk, manager.pk)]
    deal = Deal.objects.get(pk=delivered_deal.pk)
    assert deal.stage == Stage.DELIVERED
    assert deal.stage_events.filter(to_stage=Stage.DELIVERED, actor=manager).count() == 1


@pytest.mark.needs_postgres("counts SELECT ... FOR UPDATE: SQLite has no row locks")
def test_one_bounce_locks_the_deal_twice(delivered_deal, rep, manager):
    *_, queries = _bounce_watched(delivered_deal, rep, manager)
    # The bounce's lock, then deal_move re-reading the row it already holds (4 before).
    assert _locks_of_deal(queries, delivered_deal) == 2


def test_the_deal_keeps_copies_of_money_received_and_cleared(delivered_deal, rep, manager):
    payment = record(delivered_deal, rep, "600.00", kind=PaymentKind.INSTALMENT)
    deal = Deal.objects.get(pk=delivered_deal.pk)
    assert (deal.received_amount, deal.cleared_amount) == (Decimal("600.00"), Decimal("0.00"))
    clear(payment, manager)
    deal = Deal.objects.get(pk=delivered_deal.pk)
    assert (deal.received_amount, deal.cleared_amount) == (Decimal("600.00"), Decimal("600.00"))
    bounce(payment, manager)
    deal = Deal.objects.get(pk=delivered_deal.pk)
    assert (deal.received_amount, deal.cleared_amount) == (Decimal("0.00"), Decimal("0.00"))


@pytest.mark.parametrize(
    ("received", "cleared"),
    [("100.00", "200.00"), ("1500.00", "0.00"), ("0.00", "-1.00")],
)
def test_the_database_refuses_money_copies_that_cannot_be_true(deal, received, cleared):
    with pytest.raises(IntegrityError), transaction.atomic():
        Deal.objects.filter(pk=deal.pk).update(
            received_amount=Decimal(received), cleared_amount=Decimal(cleared)
        )


def test_money_written_moves_the_deals_updated_at(delivered_deal, rep, manager):
    long_ago = timezone.now() - timedelta(days=3)
    Deal.objects.filter(pk=delivered_deal.pk).update(updated_at=long_ago)
    services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep, amount=Decimal("100.00"))
    assert Deal.objects.get(pk=delivered_deal.pk).updated_at > long_ago
    Deal.objects.filter(pk=delivered_deal.pk).update(updated_at=long_ago)
    record(delivered_deal, rep, "100.00", kind=PaymentKind.INSTALMENT)
    assert Deal.objects.get(pk=delivered_deal.pk).updated_at > long_ago
    Deal.objects.filter(pk=delivered_deal.pk).update(updated_at=long_ago)
    services.payment_plan_create(
        deal_id=delivered_deal.pk,
        created_by=manager,
        instalments=[(timezone.localdate() + timedelta(days=7), Decimal("900.00"))],
        note="Cash crunch",
    )
    assert Deal.objects.get(pk=delivered_deal.pk).updated_at > long_ago


def test_money_cleared_before_delivery_moves_the_deal_on_when_delivered(rep, customer, manager):
    deal = DealFactory(
        rep=rep, customer=customer, payment_option=PaymentOption.UPFRONT, amount=Decimal("500.00")
    )
    clear(
        record(deal, rep, "500.00", kind=PaymentKind.FINAL, method=PaymentMethodKind.CARD), manager
    )
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT
    with announced() as sent:
        moved = pipeline_services.deal_move(deal_id=deal.pk, to_stage=Stage.DELIVERED, actor=rep)
    assert moved.stage == Stage.PAYMENT_CLEARED
    assert [e.to_stage for e in moved.stage_events.order_by("id")][-2:] == [
        Stage.DELIVERED,
        Stage.PAYMENT_CLEARED,
    ]
    assert sent == [(deal.pk, rep.pk)]
    # Billing hears of it and counts the paid deal in the customer's standing.
    assert Customer.objects.get(pk=customer.pk).standing == Standing.GOOD


def test_the_terms_read_the_invoicing_exception_copy_while_it_holds(customer, manager):
    Customer.objects.filter(pk=customer.pk).update(
        standing=Standing.SLOW, standing_reason="1 payment bounced recently."
    )
    assert not customer_terms(customer).allows(PaymentOption.INVOICE)
    today = timezone.localdate()
    services.invoicing_allow(
        customer_id=customer.pk, manager=manager, reason="Bank error", valid_until=today
    )
    terms = customer_terms(customer, today=today)
    assert terms.allows(PaymentOption.INVOICE) and "Bank error" in terms.exception
    assert terms.reason == "1 payment bounced recently."
    assert not customer_terms(customer, today=today + timedelta(days=1)).allows(
        PaymentOption.INVOICE
    )


# --- every billing write announces deal_changed -------------------------------------------


def test_recording_clearing_bouncing_and_charging_back_announce(delivered_deal, rep, manager):
    with announced() as sent:
        payment = record(delivered_deal, rep, "500.00", kind=PaymentKind.INSTALMENT)
    assert sent == [(delivered_deal.pk, rep.pk)]
    with announced() as sent:
        clear(payment, manager)
    assert sent == [(delivered_deal.pk, manager.pk)]
    with announced() as sent:
        services.payment_charge_back(payment_id=payment.pk, actor=manager, reason="Disputed")
    assert sent == [(delivered_deal.pk, manager.pk)]
    other = record(delivered_deal, rep, "200.00", kind=PaymentKind.INSTALMENT)
    with announced() as sent:
        bounce(other, manager)
    assert sent == [(delivered_deal.pk, manager.pk)]


def test_invoices_announce_when_issued_and_voided(delivered_deal, rep, manager):
    with announced() as sent:
        invoice = services.invoice_issue(deal_id=delivered_deal.pk, issued_by=rep)
    assert sent == [(delivered_deal.pk, rep.pk)]
    with announced() as sent:
        services.invoice_void(invoice_id=invoice.pk, actor=manager, reason="Wrong address")
    assert sent == [(delivered_deal.pk, manager.pk)]


def test_a_payment_plan_announces(delivered_deal, manager):
    with announced() as sent:
        services.payment_plan_create(
            deal_id=delivered_deal.pk,
            created_by=manager,
            instalments=[(timezone.localdate() + timedelta(days=7), Decimal("1000.00"))],
            note="Cash crunch",
        )
    assert sent == [(delivered_deal.pk, manager.pk)]


def test_waiving_a_deposit_announces(deal, manager):
    with announced() as sent:
        services.deposit_waive(deal_id=deal.pk, manager=manager, reason="Referral")
    assert sent == [(deal.pk, manager.pk)]


def test_a_card_on_file_announces(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.ON_FILE)
    with announced() as sent:
        services.payment_method_add(
            deal_id=deal.pk,
            recorded_by=rep,
            kind="card",
            processor_token="tok_abc",
            brand="Visa",
            last4="4242",
        )
    assert sent == [(deal.pk, rep.pk)]


def test_allowing_invoicing_announces_the_customers_open_deals(rep, customer, manager):
    open_deal = DealFactory(rep=rep, customer=customer)
    DealFactory(rep=rep, customer=customer, stage=Stage.LOST, lost_reason="other")
    with announced() as sent:
        services.invoicing_allow(customer_id=customer.pk, manager=manager, reason="Bank error")
    assert sent == [(open_deal.pk, manager.pk)]


def test_a_refused_payment_announces_nothing(delivered_deal, rep):
    with announced() as sent, pytest.raises(services.BillingError):
        record(delivered_deal, rep, "5000.00", kind=PaymentKind.FINAL)
    assert sent == []


def test_the_daily_copy_takes_an_older_exception_once_the_newest_ran_out(customer, manager):
    Customer.objects.filter(pk=customer.pk).update(standing=Standing.SLOW)
    today = timezone.localdate()
    tomorrow = today + timedelta(days=1)
    services.invoicing_allow(customer_id=customer.pk, manager=manager, reason="Open-ended")
    services.invoicing_allow(
        customer_id=customer.pk, manager=manager, reason="Short one", valid_until=today
    )
    assert "Short one" in customer_terms(customer, today=today).exception
    assert not customer_terms(customer, today=tomorrow).allows(PaymentOption.INVOICE)
    # Tomorrow's refresh (billing.tasks.refresh_standings) copies the one still in force.
    services.customer_copy_invoicing_exception(customer_id=customer.pk, today=tomorrow)
    assert "Open-ended" in customer_terms(customer, today=tomorrow).exception
