"""Issue 15: what the auditor hears stops the billing and reaches the rep and the manager.

Disputed: off the billing path, frozen, decided by the rep's manager (lost, or
back to the rep; a second dispute is final). Flaked: back to the rep with a
reminder. Retries are spaced. Nothing about a disputed deal counts.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from audits import services
from audits.models import Audit, AuditState, CallAttempt, DisputeDecision, Outcome
from billing import services as billing
from billing.models import PaymentKind, PaymentMethodKind
from billing.reports import rep_month_figures
from dashboards import board, totals
from pipeline import services as pipeline_services
from pipeline.models import Deal
from pipeline.stages import AuditFlag, IllegalMove, LostReason, Stage, next_moves
from reminders.models import Reminder, ReminderKind
from reminders.services import reminders_scan
from tests.audits.conftest import checklist, record

pytestmark = pytest.mark.django_db

HEARD = "Never heard of your service."


def _dispute(audit, auditor, notes=HEARD) -> Deal:
    record(audit, auditor, Outcome.DISPUTED, notes=notes)
    return Deal.objects.get(pk=audit.deal_id)


def test_a_dispute_flags_the_deal_disputed_awaiting_the_manager(audit, auditor):
    deal = _dispute(audit, auditor)
    audit.refresh_from_db()
    assert deal.audit_flag == AuditFlag.DISPUTED and deal.audit_flag_at is not None
    assert deal.stage == Stage.DEPOSIT
    assert audit.awaits_decision


def test_a_disputed_deal_cannot_be_invoiced(audit, auditor, rep):
    deal = _dispute(audit, auditor)
    with pytest.raises(billing.BillingError, match="disputed"):
        billing.invoice_issue(deal_id=deal.pk, issued_by=rep)
    assert not deal.invoices.exists()


def test_a_disputed_deal_takes_no_payment_and_no_card_on_file(audit, auditor, rep):
    deal = _dispute(audit, auditor)
    with pytest.raises(billing.BillingError, match="disputed"):
        billing.payment_record(
            deal_id=deal.pk,
            recorded_by=rep,
            kind=PaymentKind.DEPOSIT,
            method=PaymentMethodKind.CARD,
            amount=Decimal("10.00"),
        )
    with pytest.raises(billing.BillingError, match="disputed"):
        billing.payment_method_add(
            deal_id=deal.pk,
            recorded_by=rep,
            kind="card",
            processor_token="tok_1",
            brand="Visa",
            last4="4242",
        )
    assert not deal.payments.exists() and not deal.payment_methods.exists()


def test_a_disputed_deal_cannot_be_moved_by_hand(audit, auditor, rep, manager):
    deal = _dispute(audit, auditor)
    assert next_moves(deal, "rep") == [] and next_moves(deal, "manager") == []
    with pytest.raises(IllegalMove, match="disputed"):
        pipeline_services.deal_move(
            deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.OTHER
        )
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT


def test_a_disputed_deal_leaves_the_not_paid_yet_board_and_its_totals(audit, auditor, manager):
    deal = Deal.objects.get(pk=audit.deal_id)
    assert deal in board.not_paid_yet(manager)
    before = totals.board_totals(manager).count
    _dispute(audit, auditor)
    assert deal not in board.not_paid_yet(manager)
    assert totals.board_totals(manager).count == before - 1
    assert list(board.disputed_awaiting_decision(manager)) == [deal]


def test_nothing_about_a_disputed_deal_counts_in_promised_vs_cleared(audit, auditor, rep):
    deal = Deal.objects.get(pk=audit.deal_id)
    assert rep_month_figures(rep).promised == deal.amount
    _dispute(audit, auditor)
    assert rep_month_figures(rep).promised == Decimal("0.00")


def test_a_deal_marked_lost_for_a_dispute_still_does_not_count(audit, auditor, rep, manager):
    _dispute(audit, auditor)
    services.audit_dispute_decide(
        audit_id=audit.pk, manager=manager, decision=DisputeDecision.LOST, reason="No such order."
    )
    assert rep_month_figures(rep).promised == Decimal("0.00")


def test_the_wrap_up_is_not_offered_after_a_dispute_until_the_manager_sends_it_back(
    audit, auditor, rep, manager
):
    deal = _dispute(audit, auditor)
    assert "manager decides" in services.wrap_up_refusal(deal)
    with pytest.raises(services.AuditRefused, match="manager decides"):
        services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())
    services.audit_dispute_decide(
        audit_id=audit.pk,
        manager=manager,
        decision=DisputeDecision.RE_CLOSE,
        reason="Talk to their CFO.",
    )
    deal.refresh_from_db()
    assert deal.audit_flag == "" and deal.stage == Stage.DEPOSIT
    assert services.wrap_up_refusal(deal) is None
    assert services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist()).is_open


def test_the_manager_marks_a_disputed_deal_lost_with_the_reason(audit, auditor, manager):
    _dispute(audit, auditor)
    decided = services.audit_dispute_decide(
        audit_id=audit.pk, manager=manager, decision=DisputeDecision.LOST, reason="Fake order."
    )
    deal = Deal.objects.get(pk=audit.deal_id)
    assert deal.stage == Stage.LOST and deal.lost_reason == LostReason.DISPUTED_AT_AUDIT
    assert deal.audit_flag == ""
    assert decided.decision == DisputeDecision.LOST and decided.decided_by == manager
    event = deal.stage_events.first()
    assert event.to_stage == Stage.LOST and "Fake order." in event.reason


def test_a_second_dispute_is_final_only_lost_is_possible(audit, auditor, rep, manager):
    _dispute(audit, auditor)
    services.audit_dispute_decide(
        audit_id=audit.pk, manager=manager, decision=DisputeDecision.RE_CLOSE, reason="Retry."
    )
    second = services.wrap_up_hand_over(deal_id=audit.deal_id, rep=rep, **checklist())
    _dispute(second, auditor, notes="Still never heard of you.")
    with pytest.raises(services.AuditRefused, match="final"):
        services.audit_dispute_decide(
            audit_id=second.pk, manager=manager, decision=DisputeDecision.RE_CLOSE, reason="Again"
        )
    services.audit_dispute_decide(
        audit_id=second.pk, manager=manager, decision=DisputeDecision.LOST, reason="Twice."
    )
    assert Deal.objects.get(pk=audit.deal_id).stage == Stage.LOST


def test_a_decision_needs_a_reason(audit, auditor, manager):
    _dispute(audit, auditor)
    with pytest.raises(services.AuditRefused, match="why"):
        services.audit_dispute_decide(
            audit_id=audit.pk, manager=manager, decision=DisputeDecision.LOST, reason="  "
        )
    assert Audit.objects.get(pk=audit.pk).awaits_decision


def test_a_dispute_is_decided_once_a_second_submission_is_refused(audit, auditor, manager):
    _dispute(audit, auditor)
    services.audit_dispute_decide(
        audit_id=audit.pk, manager=manager, decision=DisputeDecision.RE_CLOSE, reason="Re-close."
    )
    with pytest.raises(services.AuditChanged, match="decided already"):
        services.audit_dispute_decide(
            audit_id=audit.pk, manager=manager, decision=DisputeDecision.LOST, reason="Lost."
        )
    audit.refresh_from_db()
    assert audit.decision == DisputeDecision.RE_CLOSE
    assert Deal.objects.get(pk=audit.deal_id).stage == Stage.DEPOSIT


def test_only_the_reps_manager_decides_a_dispute(audit, auditor, rep, other_rep):
    _dispute(audit, auditor)
    for person in (rep, other_rep, auditor):
        with pytest.raises(services.NotAllowed):
            services.audit_dispute_decide(
                audit_id=audit.pk, manager=person, decision=DisputeDecision.LOST, reason="x"
            )
    assert Audit.objects.get(pk=audit.pk).awaits_decision


def test_the_database_refuses_a_decision_without_who_and_why(audit, auditor):
    _dispute(audit, auditor)
    with pytest.raises(IntegrityError), transaction.atomic():
        Audit.objects.filter(pk=audit.pk).update(decision=DisputeDecision.LOST)


def test_the_database_refuses_a_flag_on_a_deal_past_its_audit(audit):
    with pytest.raises(IntegrityError), transaction.atomic():
        Deal.objects.filter(pk=audit.deal_id).update(
            stage=Stage.DELIVERED, audit_flag=AuditFlag.FLAKED, audit_flag_at=timezone.now()
        )


def test_the_rep_and_the_manager_each_get_a_dispute_reminder_at_once(audit, auditor, rep, manager):
    deal = _dispute(audit, auditor)
    reminders_scan(deal_ids=[deal.pk])
    reminders = Reminder.objects.filter(deal=deal, kind=ReminderKind.AUDIT_DISPUTED)
    assert {r.owner for r in reminders} == {rep, manager}
    assert all(r.due_at <= timezone.now() for r in reminders)
    to_manager = reminders.get(owner=manager)
    assert to_manager.target_url == f"/audits/deals/{deal.pk}/dispute/"
    assert reminders.get(owner=rep).target_url == deal.get_absolute_url()
    reminders_scan(deal_ids=[deal.pk])  # once per deal, kind and occurrence
    assert Reminder.objects.filter(deal=deal, kind=ReminderKind.AUDIT_DISPUTED).count() == 2


def test_the_managers_decision_resolves_the_dispute_reminders(audit, auditor, manager):
    deal = _dispute(audit, auditor)
    reminders_scan(deal_ids=[deal.pk])
    services.audit_dispute_decide(
        audit_id=audit.pk, manager=manager, decision=DisputeDecision.RE_CLOSE, reason="Re-close."
    )
    reminders_scan(deal_ids=[deal.pk])
    assert not any(
        r.is_open for r in Reminder.objects.filter(deal=deal, kind=ReminderKind.AUDIT_DISPUTED)
    )


# --- Flaked -------------------------------------------------------------------------


def _flake(audit, auditor) -> Deal:
    now = timezone.now() - timedelta(hours=2)
    # The calls are made in the customer's window (none counts before it opens).
    Audit.objects.filter(pk=audit.pk).update(call_window_start=now - timedelta(minutes=1))
    for _ in range(3):
        record(audit, auditor, Outcome.NO_ANSWER, now=now)
        audit.refresh_from_db()
        now = (audit.retry_at or now) + timedelta(minutes=1)
    return Deal.objects.get(pk=audit.deal_id)


def test_a_flake_sends_the_rep_a_re_close_reminder_at_once(audit, auditor, rep):
    deal = _flake(audit, auditor)
    assert deal.audit_flag == AuditFlag.FLAKED
    reminders_scan(deal_ids=[deal.pk])
    reminder = Reminder.objects.get(deal=deal, kind=ReminderKind.AUDIT_FLAKED)
    assert reminder.owner == rep and reminder.due_at <= timezone.now()
    assert reminder.why.startswith("Flaked at audit — re-close")


def test_wrapping_up_again_answers_the_flake(audit, auditor, rep):
    deal = _flake(audit, auditor)
    reminders_scan(deal_ids=[deal.pk])
    services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())
    reminders_scan(deal_ids=[deal.pk])
    assert Deal.objects.get(pk=deal.pk).audit_flag == ""
    assert not Reminder.objects.get(deal=deal, kind=ReminderKind.AUDIT_FLAKED).is_open


def test_marking_a_flaked_deal_lost_clears_its_flag(audit, auditor, rep):
    deal = _flake(audit, auditor)
    pipeline_services.deal_move(
        deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.FLAKED_AT_AUDIT
    )
    assert Deal.objects.get(pk=deal.pk).audit_flag == ""


# --- Retry spacing --------------------------------------------------------------------


@override_settings(CLEARED_AUDIT_RETRY_MINUTES=30)
def test_a_no_answer_before_the_retry_time_is_refused(audit, auditor):
    now = timezone.now()
    record(audit, auditor, Outcome.NO_ANSWER, now=now)
    with pytest.raises(services.AuditRefused, match="counts from"):
        record(audit, auditor, Outcome.NO_ANSWER, now=now + timedelta(minutes=29))
    assert CallAttempt.objects.count() == 1
    record(audit, auditor, Outcome.NO_ANSWER, now=now + timedelta(minutes=30))
    assert Audit.objects.get(pk=audit.pk).no_answer_count == 2


def test_three_quick_no_answers_do_not_flake_a_deal(audit, auditor):
    record(audit, auditor, Outcome.NO_ANSWER)
    for _ in range(2):
        with pytest.raises(services.AuditRefused):
            record(audit, auditor, Outcome.NO_ANSWER)
    audit.refresh_from_db()
    assert audit.state == AuditState.RETRY and audit.no_answer_count == 1


def test_the_customer_may_still_be_reached_before_the_retry_time(audit, auditor):
    record(audit, auditor, Outcome.NO_ANSWER)
    when = timezone.now() + timedelta(days=1)
    record(audit, auditor, Outcome.CALL_BACK, callback_at=when)
    assert Audit.objects.get(pk=audit.pk).callback_at == when


# --- Billing waits for the audit ------------------------------------------------------


def test_a_billed_deal_cannot_be_invoiced_before_its_audit(audit, rep):
    with pytest.raises(billing.BillingError, match="after its audit is confirmed"):
        billing.invoice_issue(deal_id=audit.deal_id, issued_by=rep)


def test_an_on_file_card_is_not_charged_before_the_audit(rep, customer):
    from tests.factories import DealFactory

    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT, payment_option="on_file")
    with pytest.raises(billing.BillingError, match="charged only after its audit"):
        billing.payment_record(
            deal_id=deal.pk,
            recorded_by=rep,
            kind=PaymentKind.FINAL,
            method=PaymentMethodKind.CARD,
            amount=Decimal("10.00"),
        )


def test_an_invoice_deal_still_takes_its_deposit_before_the_audit(rep, customer):
    from tests.factories import DealFactory

    deal = DealFactory(rep=rep, customer=customer, stage=Stage.PROMISED, payment_option="invoice")
    payment = billing.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind=PaymentKind.DEPOSIT,
        method=PaymentMethodKind.BANK_TRANSFER,
        amount=Decimal("10.00"),
    )
    assert payment.pk


def test_a_confirmed_audit_opens_the_billing(audit, auditor, rep):
    from tests.audits.conftest import YES

    record(audit, auditor, Outcome.CONFIRMED, answers=YES)
    invoice = billing.invoice_issue(deal_id=audit.deal_id, issued_by=rep)
    assert invoice.amount > 0


def test_an_upfront_deal_is_paid_at_once_as_before(rep, customer):
    from tests.factories import DealFactory

    deal = DealFactory(rep=rep, customer=customer, payment_option="upfront")
    payment = billing.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind=PaymentKind.FINAL,
        method=PaymentMethodKind.CARD,
        amount=deal.amount,
    )
    assert payment.pk
