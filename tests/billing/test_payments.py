"""Payments: recording, the clearing lifecycle, stage sync, commission and clawback."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import (
    CommissionEntry,
    CommissionKind,
    CommissionRate,
    EventSource,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentMethodKind,
    PaymentStatus,
    TermsException,
)
from billing.reports import commission_ledger, rep_month_figures
from billing.selectors import deal_money
from pipeline import services as pipeline_services
from pipeline.models import Customer, Deal, StageEvent
from pipeline.selectors import customer_terms
from pipeline.stages import SYSTEM, IllegalMove, LostReason, Stage
from pipeline.terms import PaymentOption, Standing
from tests.billing.money import bounce, clear, record
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


# --- Recording -------------------------------------------


def test_a_recorded_payment_is_pending_with_its_first_ledger_row(deal, rep):
    payment = record(deal, rep)
    assert payment.status == PaymentStatus.PENDING
    event = payment.events.get()
    assert (event.from_status, event.to_status, event.actor) == ("", PaymentStatus.PENDING, rep)


def test_an_overpayment_is_refused_and_nothing_is_written(deal, rep):
    record(deal, rep, "900.00", kind=PaymentKind.FINAL)
    with pytest.raises(services.BillingError, match="open balance of \\$100.00") as refused:
        record(deal, rep, "100.01", kind=PaymentKind.FINAL)
    assert refused.value.field == "amount"
    assert Payment.objects.filter(deal=deal).count() == 1
    assert PaymentEvent.objects.filter(payment__deal=deal).count() == 1


def test_a_bounced_payment_no_longer_counts_against_the_balance(deal, rep, manager):
    payment = record(deal, rep, "1000.00", kind=PaymentKind.FINAL)
    bounce(payment, manager)
    assert record(deal, rep, "1000.00", kind=PaymentKind.FINAL).status == PaymentStatus.PENDING


@pytest.mark.parametrize("amount", ["0", "-5.00"])
def test_a_zero_or_negative_amount_is_refused(deal, rep, amount):
    with pytest.raises(services.BillingError, match="more than zero"):
        record(deal, rep, amount)
    assert not Payment.objects.exists()


def test_no_payment_is_taken_on_a_lost_deal(deal, rep):
    pipeline_services.deal_move(
        deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.COMPETITOR
    )
    with pytest.raises(services.BillingError, match="lost"):
        record(deal, rep)
    assert not Payment.objects.exists()


def test_payments_and_their_ledger_cannot_be_edited_or_deleted(deal, rep):
    payment = record(deal, rep)
    payment.amount = Decimal("1.00")
    with pytest.raises(TypeError):
        payment.save()
    with pytest.raises(TypeError):
        payment.delete()
    with pytest.raises(TypeError):
        Payment.objects.filter(pk=payment.pk).update(amount=Decimal("1.00"))
    with pytest.raises(TypeError):
        Payment.objects.filter(pk=payment.pk).delete()
    with pytest.raises(TypeError):
        PaymentEvent.objects.filter(payment=payment).update(reason="x")
    with pytest.raises(TypeError):
        payment.events.get().delete()


# --- The clearing lifecycle -------------------------------------------


def test_a_manager_clears_a_pending_payment_with_a_ledger_row(deal, rep, manager):
    payment = clear(record(deal, rep), manager)
    assert payment.status == PaymentStatus.CLEARED and payment.cleared_at is not None
    newest = payment.events.first()
    assert (newest.from_status, newest.to_status, newest.actor) == (
        PaymentStatus.PENDING,
        PaymentStatus.CLEARED,
        manager,
    )


def test_a_rep_cannot_clear_even_their_own_payment(deal, rep):
    payment = record(deal, rep)
    with pytest.raises(services.NotAllowed, match="Only a manager"):
        clear(payment, rep)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.events.count() == 1


def test_clearing_twice_says_already_cleared_and_writes_nothing(deal, rep, manager):
    payment = clear(record(deal, rep), manager)
    with pytest.raises(services.BillingError, match="already cleared"):
        clear(payment, manager)
    assert payment.events.count() == 2
    assert CommissionEntry.objects.count() == 1


def test_a_bounced_payment_cannot_bounce_again(deal, rep, manager):
    payment = bounce(record(deal, rep), manager)
    with pytest.raises(services.BillingError, match="already bounced"):
        bounce(payment, manager)
    with pytest.raises(services.BillingError, match="final"):
        clear(payment, manager)
    assert payment.events.count() == 2


def test_a_cleared_payment_bounces_only_once(deal, rep, manager):
    payment = bounce(clear(record(deal, rep), manager), manager)
    with pytest.raises(services.BillingError, match="already bounced"):
        bounce(payment, manager)
    assert CommissionEntry.objects.filter(kind=CommissionKind.CLAWBACK).count() == 1


def test_a_bounce_needs_a_reason(deal, rep, manager):
    payment = record(deal, rep)
    with pytest.raises(services.BillingError, match="Say why") as refused:
        bounce(payment, manager, reason="  ")
    assert refused.value.field == "reason"


def test_only_a_cleared_payment_can_be_charged_back(deal, rep, manager):
    payment = record(deal, rep, method=PaymentMethodKind.CARD)
    with pytest.raises(services.BillingError, match="Only a cleared payment"):
        services.payment_charge_back(
            payment_id=payment.pk,
            actor=manager,
            reason="Disputed",
        )


# --- Stage sync -------------------------------------------


def test_a_deposit_that_is_in_moves_the_deal_to_deposit_as_the_system(deal, rep):
    record(deal, rep, "200.00")  # 20% of 1,000.00
    deal.refresh_from_db()
    assert deal.stage == Stage.DEPOSIT
    event = StageEvent.objects.filter(deal=deal).first()
    assert (event.to_stage, event.actor) == (Stage.DEPOSIT, rep)


def test_a_deposit_below_the_required_amount_leaves_the_deal_in_promised(deal, rep):
    record(deal, rep, "199.99")
    deal.refresh_from_db()
    assert deal.stage == Stage.PROMISED
    assert not deal_money(deal).deposit_in


def test_a_card_on_file_is_the_deposit_of_an_on_file_deal(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.ON_FILE)
    services.payment_method_add(
        deal_id=deal.pk,
        recorded_by=rep,
        kind="card",
        processor_token="tok_1NxAbc",
        brand="Visa",
        last4="4242",
    )
    deal.refresh_from_db()
    assert deal.stage == Stage.DEPOSIT


def test_a_rep_cannot_click_deposit_is_in(deal, rep):
    with pytest.raises(IllegalMove, match="from the facts"):
        pipeline_services.deal_move(deal_id=deal.pk, to_stage=Stage.DEPOSIT, actor=rep)


def test_cleared_money_covering_a_delivered_deal_moves_it_to_payment_cleared(
    delivered_deal, rep, manager
):
    payment = record(delivered_deal, rep, "1000.00", kind=PaymentKind.FINAL)
    delivered_deal.refresh_from_db()
    assert delivered_deal.stage == Stage.DELIVERED  # pending money does not count
    clear(payment, manager)
    delivered_deal.refresh_from_db()
    assert delivered_deal.stage == Stage.PAYMENT_CLEARED
    assert delivered_deal.cleared_amount == Decimal("1000.00")
    event = StageEvent.objects.filter(deal=delivered_deal).first()
    assert (event.to_stage, event.actor) == (Stage.PAYMENT_CLEARED, manager)


def test_a_bounce_takes_the_deal_back_out_of_payment_cleared(delivered_deal, rep, manager):
    payment = clear(record(delivered_deal, rep, "1000.00", kind=PaymentKind.FINAL), manager)
    bounce(payment, manager)
    delivered_deal.refresh_from_db()
    assert delivered_deal.stage == Stage.DELIVERED
    assert delivered_deal.cleared_amount == Decimal("0.00")
    assert deal_money(delivered_deal).outstanding == Decimal("1000.00")
    event = StageEvent.objects.filter(deal=delivered_deal).first()
    assert (event.from_stage, event.to_stage) == (Stage.PAYMENT_CLEARED, Stage.DELIVERED)


def test_money_cleared_before_delivery_moves_the_deal_on_when_it_is_delivered(
    rep, customer, manager
):
    deal = DealFactory(
        rep=rep, customer=customer, payment_option=PaymentOption.UPFRONT, amount=Decimal("500")
    )
    clear(record(deal, rep, "500.00", kind=PaymentKind.FINAL, method="card"), manager)
    deal.refresh_from_db()
    assert deal.stage == Stage.DEPOSIT
    moved = pipeline_services.deal_move(deal_id=deal.pk, to_stage=Stage.DELIVERED, actor=rep)
    assert moved.stage == Stage.PAYMENT_CLEARED
    stages = list(StageEvent.objects.filter(deal=deal).values_list("to_stage", flat=True))
    assert stages[:2] == [Stage.PAYMENT_CLEARED, Stage.DELIVERED]


def test_payment_cleared_is_never_clicked_by_hand(delivered_deal, manager):
    with pytest.raises(IllegalMove, match="from the facts"):
        pipeline_services.deal_move(
            deal_id=delivered_deal.pk, to_stage=Stage.PAYMENT_CLEARED, actor=manager
        )


# --- Commission -------------------------------------------


def test_clearing_earns_commission_at_the_default_rate(delivered_deal, rep, manager, settings):
    settings.CLEARED_COMMISSION_RATE = Decimal("0.10")
    clear(record(delivered_deal, rep, "1000.00", kind=PaymentKind.FINAL), manager)
    entry = CommissionEntry.objects.get()
    assert (entry.rep, entry.kind, entry.base, entry.amount) == (
        rep,
        CommissionKind.EARNED,
        Decimal("1000.00"),
        Decimal("100.00"),
    )


def test_a_reps_own_rate_wins_and_commission_rounds_half_up(delivered_deal, rep, manager):
    CommissionRate.objects.create(rep=rep, rate=Decimal("0.1000"), effective_from=date(2020, 1, 1))
    # 10.05 at 10% is 1.005: half up gives 1.01 (banker's would give 1.00).
    clear(record(delivered_deal, rep, "10.05", kind=PaymentKind.INSTALMENT), manager)
    assert CommissionEntry.objects.get().amount == Decimal("1.01")
    CommissionRate.objects.create(rep=rep, rate=Decimal("0.1250"), effective_from=date(2020, 1, 1))
    clear(record(delivered_deal, rep, "100.00", kind=PaymentKind.INSTALMENT), manager)
    assert CommissionEntry.objects.first().amount == Decimal("12.50")


def test_a_bounce_after_clearing_claws_the_commission_back(delivered_deal, rep, manager):
    payment = clear(record(delivered_deal, rep, "1000.00", kind=PaymentKind.FINAL), manager)
    bounce(payment, manager)
    clawback = CommissionEntry.objects.get(kind=CommissionKind.CLAWBACK)
    assert (clawback.base, clawback.amount, clawback.actor) == (
        Decimal("-1000.00"),
        Decimal("-100.00"),
        manager,
    )
    figures = rep_month_figures(rep)
    assert (figures.cleared, figures.earned) == (Decimal("0.00"), Decimal("0.00"))


def test_a_bounce_before_clearing_earns_and_claws_back_nothing(deal, rep, manager):
    bounce(record(deal, rep), manager)
    assert not CommissionEntry.objects.exists()


def test_a_rep_sees_promised_pending_cleared_and_earned_for_the_month(rep, customer, manager):
    deal = DealFactory(rep=rep, customer=customer, amount=Decimal("2000.00"))
    pipeline_services.deal_move(deal_id=deal.pk, to_stage=Stage.DEPOSIT, actor=None, as_role=SYSTEM)
    clear(record(deal, rep, "400.00"), manager)
    record(deal, rep, "600.00", kind=PaymentKind.INSTALMENT)
    figures = rep_month_figures(rep)
    assert figures.promised == Decimal("2000.00")
    assert figures.pending == Decimal("600.00")
    assert figures.cleared == Decimal("400.00")
    assert figures.earned == Decimal("40.00")
    last_month = timezone.localdate().replace(day=1) - timedelta(days=1)
    assert rep_month_figures(rep, last_month).earned == Decimal("0.00")


def test_commission_entries_are_append_only(delivered_deal, rep, manager):
    clear(record(delivered_deal, rep, "1000.00", kind=PaymentKind.FINAL), manager)
    with pytest.raises(TypeError):
        CommissionEntry.objects.update(amount=0)
    with pytest.raises(TypeError):
        CommissionEntry.objects.get().delete()


# --- Exceptions and standing -------------------------------------------


def test_a_manager_waives_a_deposit_and_the_deal_may_skip_deposit(deal, rep, manager):
    exception = services.deposit_waive(deal_id=deal.pk, manager=manager, reason="Referral")
    deal.refresh_from_db()
    assert not deal.deposit_required and deal.version == 2
    assert (exception.granted_by, exception.reason, exception.deal) == (manager, "Referral", deal)
    assert not deal.needs_stage(Stage.DEPOSIT)
    pipeline_services.deal_move(
        deal_id=deal.pk, to_stage=Stage.AUDIT_CONFIRMED, actor=None, as_role=SYSTEM
    )


def test_the_waiver_is_on_the_deals_timeline(deal, manager):
    from billing.templatetags.billing import with_terms_exceptions
    from pipeline.selectors import deal_timeline

    services.deposit_waive(deal_id=deal.pk, manager=manager, reason="Referral")
    kinds = [entry["kind"] for entry in with_terms_exceptions(deal_timeline(deal), deal)]
    assert "exception" in kinds


def test_a_rep_cannot_waive_a_deposit(deal, rep):
    with pytest.raises(services.NotAllowed):
        services.deposit_waive(deal_id=deal.pk, manager=rep, reason="Please")
    deal.refresh_from_db()
    assert deal.deposit_required and not TermsException.objects.exists()


def test_an_upfront_deposit_cannot_be_waived(rep, customer, manager):
    deal = DealFactory(rep=rep, customer=customer, payment_option=PaymentOption.UPFRONT)
    with pytest.raises(services.BillingError, match="paid in full"):
        services.deposit_waive(deal_id=deal.pk, manager=manager, reason="x")


def _paid_late(customer, rep, manager, days_late: int):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    today = timezone.localdate()
    invoice = services.invoice_issue(
        deal_id=deal.pk,
        issued_by=rep,
        issue_date=today - timedelta(days=30 + days_late),
        terms_days=30,
    )
    clear(record(deal, rep, "1000.00", kind=PaymentKind.FINAL, invoice=invoice), manager)
    return deal


def test_standing_is_learned_from_real_history(customer, rep, manager):
    assert customer_terms(customer).standing == Standing.NEW
    _paid_late(customer, rep, manager, days_late=0)
    terms = customer_terms(customer)
    assert terms.standing == Standing.GOOD and terms.reason == "1 deal paid on time."
    _paid_late(customer, rep, manager, days_late=20)
    terms = customer_terms(customer)
    assert terms.standing == Standing.SLOW
    assert terms.reason == "Pays 10 days late on average."
    customer.refresh_from_db()
    assert (customer.standing, customer.standing_reason) == (Standing.SLOW, terms.reason)


def test_an_unpaid_overdue_invoice_counts_as_late_today(customer, rep, manager):
    _paid_late(customer, rep, manager, days_late=0)
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    services.invoice_issue(
        deal_id=deal.pk,
        issued_by=rep,
        issue_date=timezone.localdate() - timedelta(days=60),
        terms_days=30,
    )
    assert customer_terms(customer).reason == "Pays 15 days late on average."


def test_a_recent_bounce_makes_a_slow_payer_and_an_exception_lets_them_be_invoiced(
    customer, rep, manager
):
    deal = _paid_late(customer, rep, manager, days_late=0)
    bounce(deal.payments.get(), manager)
    terms = customer_terms(customer)
    assert terms.standing == Standing.SLOW and not terms.allows(PaymentOption.INVOICE)
    services.invoicing_allow(customer_id=customer.pk, manager=manager, reason="Bank error")
    terms = customer_terms(customer)
    assert terms.allows(PaymentOption.INVOICE) and terms.deposit_required(PaymentOption.INVOICE)
    assert "Bank error" in terms.exception
    new_deal = pipeline_services.deal_promise(
        rep=rep,
        customer=Customer.objects.get(pk=customer.pk),
        title="Second order",
        amount=Decimal("300.00"),
        payment_option=PaymentOption.INVOICE,
        expected_delivery_date=timezone.localdate() + timedelta(days=5),
        next_step="Call",
        next_step_date=timezone.localdate() + timedelta(days=1),
    )
    assert new_deal.deposit_required


def test_an_expired_invoicing_exception_no_longer_counts(customer, rep, manager):
    deal = _paid_late(customer, rep, manager, days_late=0)
    bounce(deal.payments.get(), manager)
    TermsException.objects.create(
        kind="allow_invoicing",
        customer=customer,
        reason="Old",
        valid_until=timezone.localdate() - timedelta(days=1),
        granted_by=manager,
    )
    assert not customer_terms(customer).allows(PaymentOption.INVOICE)


def test_the_webhook_source_is_recorded_without_a_person(delivered_deal, rep):
    payment = record(delivered_deal, rep, "1000.00", kind=PaymentKind.FINAL)
    services.payment_clear(
        payment_id=payment.pk,
        actor=None,
        source=EventSource.WEBHOOK,
    )
    event = payment.events.first()
    assert (event.actor, event.source) == (None, EventSource.WEBHOOK)
    assert Deal.objects.get(pk=delivered_deal.pk).stage == Stage.PAYMENT_CLEARED


@pytest.mark.parametrize(
    "disputed",
    [
        {"audit_flag": "disputed", "audit_flag_at": timezone.now()},
        {"stage": Stage.LOST, "lost_reason": LostReason.DISPUTED_AT_AUDIT},
    ],
)
def test_nothing_of_a_deal_disputed_at_audit_counts_in_the_month(
    rep, customer, manager, disputed, django_assert_num_queries
):
    kept = DealFactory(rep=rep, customer=customer, amount=Decimal("2000.00"))
    gone = DealFactory(rep=rep, customer=customer, amount=Decimal("3000.00"))
    for deal in (kept, gone):
        pipeline_services.deal_move(
            deal_id=deal.pk, to_stage=Stage.DEPOSIT, actor=None, as_role=SYSTEM
        )
        clear(record(deal, rep, "400.00"), manager)
        record(deal, rep, "100.00", kind=PaymentKind.INSTALMENT)
    Deal.objects.filter(pk=gone.pk).update(**disputed)  # as the audit's outcome writes it
    with django_assert_num_queries(3):
        figures = rep_month_figures(rep)
    assert (figures.promised, figures.pending) == (Decimal("2000.00"), Decimal("100.00"))
    assert (figures.cleared, figures.earned) == (Decimal("400.00"), Decimal("40.00"))
    assert [entry.deal for entry in commission_ledger([rep.pk], timezone.localdate())] == [kept]
