"""Refunds: cleared money given back in full or in part, as ledger rows of their own; the
deal's money, stage and commission follow; managers only; the processor's seam."""

from decimal import Decimal

import pytest

from billing import services
from billing.models import (
    CommissionEntry,
    CommissionKind,
    Invoice,
    Payment,
    Refund,
    RefundStatus,
)
from billing.selectors import deal_money
from pipeline.stages import Stage
from tests.billing.money import bounce, clear, record
from tests.factories import DealFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_deal(rep, customer, manager):
    """A delivered 1,000.00 deal paid in full by one cleared check: Payment cleared."""
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    payment = clear(record(deal, rep, "1000.00", kind="final"), manager)
    deal.refresh_from_db()
    assert deal.stage == Stage.PAYMENT_CLEARED
    return deal, payment


def refund(payment, by, amount, reason="Customer returned one unit"):
    return services.payment_refund(
        payment_id=payment.pk, actor=by, amount=Decimal(amount), reason=reason
    )


def _earned(deal) -> Decimal:
    return sum(
        CommissionEntry.objects.filter(deal=deal).values_list("amount", flat=True), Decimal("0")
    )


# --- The ledger -------------------------------------------


def test_a_partial_refund_is_a_row_of_its_own_and_the_payment_keeps_its_amount(paid_deal, manager):
    deal, payment = paid_deal
    given = refund(payment, manager, "400.00")
    assert (given.amount, given.status, given.actor) == (
        Decimal("400.00"),
        RefundStatus.REFUNDED,
        manager,
    )
    payment.refresh_from_db()
    assert payment.amount == Decimal("1000.00") and payment.status == "cleared"
    with pytest.raises(TypeError):
        given.save()
    with pytest.raises(TypeError):
        Refund.objects.filter(pk=given.pk).update(amount=Decimal("1.00"))


def test_a_partial_refund_takes_the_money_off_cleared_and_reopens_the_balance(paid_deal, manager):
    deal, payment = paid_deal
    refund(payment, manager, "400.00")
    deal.refresh_from_db()
    assert deal.cleared_amount == Decimal("600.00")
    assert deal.received_amount == Decimal("600.00")
    assert deal.outstanding == Decimal("400.00")
    assert deal.stage == Stage.DELIVERED
    event = deal.stage_events.latest("at")
    assert event.reason == "A payment was refunded: the balance is open again."
    money = deal_money(deal)
    assert (money.cleared, money.refunded, money.open_balance) == (
        Decimal("600.00"),
        Decimal("400.00"),
        Decimal("400.00"),
    )


def test_a_refunded_balance_can_be_paid_again_and_the_deal_clears_again(paid_deal, rep, manager):
    deal, payment = paid_deal
    refund(payment, manager, "400.00")
    clear(record(deal, rep, "400.00", kind="final"), manager)
    deal.refresh_from_db()
    assert deal.stage == Stage.PAYMENT_CLEARED and deal.cleared_amount == Decimal("1000.00")


def test_a_partial_refund_claws_back_commission_in_proportion(paid_deal, manager):
    deal, payment = paid_deal
    assert _earned(deal) == Decimal("100.00")
    given = refund(payment, manager, "333.33")
    clawback = CommissionEntry.objects.get(refund=given)
    assert clawback.kind == CommissionKind.REFUND
    assert (clawback.base, clawback.amount) == (Decimal("-333.33"), Decimal("-33.33"))
    assert _earned(deal) == Decimal("66.67")


def test_refunding_the_rest_takes_back_every_cent_of_commission(paid_deal, manager):
    deal, payment = paid_deal
    refund(payment, manager, "333.33")
    refund(payment, manager, "333.33")
    refund(payment, manager, "333.34")
    assert _earned(deal) == Decimal("0.00")
    deal.refresh_from_db()
    assert deal.cleared_amount == Decimal("0.00")


def test_a_full_refund_leaves_nothing_cleared(paid_deal, manager):
    deal, payment = paid_deal
    refund(payment, manager, "1000.00")
    deal.refresh_from_db()
    assert (deal.cleared_amount, deal.stage) == (Decimal("0.00"), Stage.DELIVERED)
    assert _earned(deal) == Decimal("0.00")
    assert services.refundable(payment) == Decimal("0.00")


def test_a_charge_back_after_a_partial_refund_claws_back_only_what_is_left(paid_deal, manager):
    deal, payment = paid_deal
    refund(payment, manager, "400.00")
    services.payment_charge_back(payment_id=payment.pk, actor=manager, reason="Disputed")
    assert _earned(deal) == Decimal("0.00")
    clawback = CommissionEntry.objects.get(payment=payment, kind=CommissionKind.CLAWBACK)
    assert (clawback.base, clawback.amount) == (Decimal("-600.00"), Decimal("-60.00"))
    deal.refresh_from_db()
    assert (deal.cleared_amount, deal.received_amount) == (Decimal("0.00"), Decimal("0.00"))


def test_an_invoice_refunded_in_part_is_owed_again(rep, customer, manager):
    deal = DealFactory(
        rep=rep, customer=customer, deposit_required=False, stage=Stage.AUDIT_CONFIRMED
    )
    invoice = InvoiceFactory(deal=deal, amount=Decimal("1000.00"))
    payment = clear(record(deal, rep, "1000.00", kind="final", invoice=invoice), manager)
    assert invoice.cleared_money() == Decimal("1000.00")
    refund(payment, manager, "250.00")
    assert invoice.cleared_money() == Decimal("750.00")
    assert Invoice.objects.with_cleared().get(pk=invoice.pk).cleared == Decimal("750.00")


def test_what_is_refunded_is_asked_for_again_by_the_pay_page_and_left_to_invoice(
    rep, customer, manager
):
    """One definition of money in (billing.services.live_money): the customer's pay page
    asks for the refunded part of an invoice, and a refunded deposit is invoiced again."""
    from online.services import due_for

    deal = DealFactory(
        rep=rep, customer=customer, deposit_required=False, stage=Stage.AUDIT_CONFIRMED,
        amount=Decimal("1500.00"),
    )  # fmt: skip
    deposit = clear(record(deal, rep, "300.00", kind="deposit"), manager)
    assert services.invoiceable_money(deal) == Decimal("1200.00")
    invoice = InvoiceFactory(deal=deal, amount=Decimal("1200.00"))
    payment = clear(record(deal, rep, "1200.00", kind="final", invoice=invoice), manager)
    assert due_for(invoice) is None
    refund(payment, manager, "200.00")
    assert due_for(invoice).amount == Decimal("200.00")
    refund(deposit, manager, "100.00")
    assert services.invoiceable_money(deal) == Decimal("100.00")


# --- Refused, nothing written -------------------------------------------


def test_more_than_is_left_to_refund_is_refused_next_to_the_amount(paid_deal, manager):
    deal, payment = paid_deal
    refund(payment, manager, "600.00")
    with pytest.raises(services.BillingError, match="left to refund of this payment: \\$400.00"):
        refund(payment, manager, "400.01")
    assert Refund.objects.filter(payment=payment).count() == 1


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [("0", "why", "amount"), ("-1", "why", "amount"), ("5", " ", "reason")],
)
def test_a_refund_needs_an_amount_and_a_reason(paid_deal, manager, amount, reason, field):
    deal, payment = paid_deal
    with pytest.raises(services.BillingError) as refused:
        refund(payment, manager, amount, reason=reason)
    assert refused.value.field == field
    assert not Refund.objects.exists()


def test_a_rep_cannot_refund(paid_deal, rep):
    deal, payment = paid_deal
    with pytest.raises(services.NotAllowed):
        refund(payment, rep, "10.00")
    assert not Refund.objects.exists()


def test_only_cleared_money_is_refunded(rep, manager, delivered_deal):
    pending = record(delivered_deal, rep, "500.00", kind="final")
    with pytest.raises(services.BillingError, match="this payment is pending"):
        refund(pending, manager, "100.00")
    bounced = bounce(pending, manager)
    with pytest.raises(services.BillingError, match="this payment is bounced"):
        refund(bounced, manager, "100.00")
    assert not Refund.objects.exists()


# --- Through a payment processor -------------------------------------------


def test_a_processor_payment_is_refunded_processing_and_sent_after_commit(
    rep, manager, delivered_deal, processor, django_capture_on_commit_callbacks
):
    payment = clear(record(delivered_deal, rep, "1000.00", kind="final", method="card"), manager)
    with django_capture_on_commit_callbacks(execute=True):
        given = refund(payment, manager, "1000.00")
    assert given.status == RefundStatus.PROCESSING
    assert processor == [given.pk]
    delivered_deal.refresh_from_db()
    assert delivered_deal.cleared_amount == Decimal("0.00")  # counted while on its way
    assert services.refund_settle(refund_id=given.pk, processor_ref="re_123") is True
    assert services.refund_settle(refund_id=given.pk, processor_ref="re_123") is False
    given.refresh_from_db()
    assert (given.status, given.processor_ref) == (RefundStatus.REFUNDED, "re_123")


def test_a_refund_the_processor_refuses_counts_again_with_its_commission(
    rep, manager, delivered_deal, processor
):
    payment = clear(record(delivered_deal, rep, "1000.00", kind="final", method="card"), manager)
    given = refund(payment, manager, "400.00")
    assert services.refund_fail(refund_id=given.pk, failure="charge_already_refunded") is True
    assert services.refund_fail(refund_id=given.pk, failure="again") is False
    delivered_deal.refresh_from_db()
    assert delivered_deal.cleared_amount == Decimal("1000.00")
    assert delivered_deal.stage == Stage.PAYMENT_CLEARED
    assert _earned(delivered_deal) == Decimal("100.00")
    assert services.refundable(payment) == Decimal("1000.00")


def test_a_check_is_refunded_by_hand_not_through_the_processor(paid_deal, manager, processor):
    deal, payment = paid_deal
    assert refund(payment, manager, "10.00").status == RefundStatus.REFUNDED
    assert processor == []


# --- The pages -------------------------------------------


def test_a_manager_refunds_from_the_payment_and_sees_it_on_the_deal(paid_deal, manager_client):
    deal, payment = paid_deal
    url = f"/billing/payments/{payment.pk}/refund/"
    page = manager_client.get(url)
    assert page.status_code == 200 and "$1,000.00 left to refund" in page.content.decode()
    response = manager_client.post(url, {"amount": "250.00", "reason": "One unit came back"})
    assert response.status_code == 302
    html = manager_client.get(deal.get_absolute_url()).content.decode()
    assert "after $250.00 refunded" in html
    assert "Refunded $250.00</strong> of the final payment of $1,000.00" in html  # timeline
    assert "One unit came back" in html


def test_an_over_refund_keeps_what_was_typed_with_the_message_by_the_amount(
    paid_deal, manager_client
):
    deal, payment = paid_deal
    url = f"/billing/payments/{payment.pk}/refund/"
    response = manager_client.post(url, {"amount": "1000.01", "reason": "Typed reason kept"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "more than is left to refund" in html
    assert 'value="1000.01"' in html and "Typed reason kept" in html
    assert not Refund.objects.exists()


def test_a_rep_gets_403_and_another_rep_404_on_the_refund_page(
    paid_deal, rep_client, other_rep_client
):
    deal, payment = paid_deal
    url = f"/billing/payments/{payment.pk}/refund/"
    assert rep_client.post(url, {"amount": "1.00", "reason": "x"}).status_code == 403
    assert other_rep_client.get(url).status_code == 404
    assert other_rep_client.post(url, {"amount": "1.00", "reason": "x"}).status_code == 404
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment.pk).status == "cleared"


def test_the_refund_link_shows_only_to_a_manager_on_a_cleared_payment(
    paid_deal, manager_client, rep_client
):
    deal, payment = paid_deal
    assert "Refund…" in manager_client.get(deal.get_absolute_url()).content.decode()
    assert "Refund…" not in rep_client.get(deal.get_absolute_url()).content.decode()


def test_the_deal_page_queries_do_not_grow_with_refunds(
    paid_deal, manager, rep_client, django_assert_max_num_queries
):
    deal, payment = paid_deal
    refund(payment, manager, "10.00")
    with django_assert_max_num_queries(60) as few:
        rep_client.get(deal.get_absolute_url())
    for _ in range(4):
        refund(payment, manager, "10.00")
    with django_assert_max_num_queries(len(few.captured_queries)):
        rep_client.get(deal.get_absolute_url())
