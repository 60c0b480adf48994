from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audits import services
from audits.models import Audit, AuditState, CallAttempt, Outcome
from audits.services import OUTCOME_EFFECTS
from pipeline import services as pipeline_services
from pipeline.models import AuditFlag, Deal, StageEvent
from pipeline.stages import IllegalMove, LostReason, Stage
from tests.audits.conftest import YES, record

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("outcome", "kwargs", "audit_state", "deal_stage", "lost_reason"),
    [
        (Outcome.CONFIRMED, {"answers": YES}, AuditState.CONFIRMED, Stage.AUDIT_CONFIRMED, ""),
        (Outcome.NO_ANSWER, {}, AuditState.RETRY, Stage.DEPOSIT, ""),
        (Outcome.CALL_BACK, {"callback_at": "later"}, AuditState.CALL_BACK, Stage.DEPOSIT, ""),
        (Outcome.DISPUTED, {"notes": "Never heard of you"}, AuditState.DISPUTED, Stage.DEPOSIT, ""),
        (
            Outcome.DECLINED,
            {"notes": "Cancels"},
            AuditState.DECLINED,
            Stage.LOST,
            LostReason.DECLINED_AT_AUDIT,
        ),
    ],
)
def test_each_outcome_moves_the_audit_and_the_deal_as_the_table_says(
    audit, auditor, outcome, kwargs, audit_state, deal_stage, lost_reason
):
    if kwargs.get("callback_at") == "later":
        kwargs["callback_at"] = timezone.now() + timedelta(hours=3)
    attempt = record(audit, auditor, outcome, **kwargs)
    audit.refresh_from_db()
    deal = Deal.objects.get(pk=audit.deal_id)
    assert (audit.state, deal.stage, deal.lost_reason) == (audit_state, deal_stage, lost_reason)
    assert OUTCOME_EFFECTS[outcome].audit_state == audit_state
    assert attempt.script.version == 1 and attempt.auditor == auditor
    assert audit.claimed_by is None and audit.version == 2


def test_a_confirmed_call_moves_the_deal_as_the_system_naming_the_auditor(audit, auditor):
    record(audit, auditor, Outcome.CONFIRMED, answers=YES)
    event = StageEvent.objects.filter(deal=audit.deal_id).first()
    assert (event.to_stage, event.actor) == (Stage.AUDIT_CONFIRMED, auditor)
    assert "confirmed the sale" in event.reason


@pytest.mark.parametrize("question", ["identity", "purchase", "price", "terms", "right_to_cancel"])
def test_a_sale_is_not_confirmed_without_a_yes_to_every_question(audit, auditor, question):
    answers = YES | {question: "no"}
    with pytest.raises(services.AuditRefused, match="needs a yes to every question"):
        record(audit, auditor, Outcome.CONFIRMED, answers=answers)
    assert not CallAttempt.objects.exists()
    assert Deal.objects.get(pk=audit.deal_id).stage == Stage.DEPOSIT


@override_settings(CLEARED_AUDIT_RETRY_MINUTES=45)
def test_a_no_answer_is_retried_after_the_configured_minutes(audit, auditor):
    now = timezone.now()
    record(audit, auditor, Outcome.NO_ANSWER, now=now)
    audit.refresh_from_db()
    assert audit.retry_at == now + timedelta(minutes=45) == audit.next_call_at
    assert audit.no_answer_count == 1 and audit.is_open


def test_the_third_no_answer_flakes_the_audit_and_the_deal_goes_back_to_the_rep(audit, auditor):
    now = timezone.now()
    for expected in (AuditState.RETRY, AuditState.RETRY, AuditState.FLAKED):
        record(audit, auditor, Outcome.NO_ANSWER, now=now)
        audit.refresh_from_db()
        assert audit.state == expected
        now = (audit.retry_at or now) + timedelta(minutes=1)  # each retry after its time
    assert audit.no_answer_count == 3
    assert audit.closed_at and audit.escalated_at and audit.next_call_at is None
    deal = Deal.objects.get(pk=audit.deal_id)
    assert deal.stage == Stage.DEPOSIT and deal.audit_flag == AuditFlag.FLAKED
    assert services.wrap_up_refusal(deal) is None  # the rep can re-close it


def test_a_call_back_is_scheduled_at_the_customers_time(audit, auditor):
    when = timezone.now() + timedelta(days=1)
    record(audit, auditor, Outcome.CALL_BACK, callback_at=when)
    audit.refresh_from_db()
    assert audit.callback_at == when == audit.next_call_at


def test_a_call_back_needs_a_time_in_the_future(audit, auditor):
    with pytest.raises(services.AuditRefused, match="called back"):
        record(audit, auditor, Outcome.CALL_BACK, callback_at=timezone.now() - timedelta(hours=1))
    assert not CallAttempt.objects.exists()


def test_a_dispute_closes_the_audit_and_flags_it_for_the_manager(audit, auditor):
    record(audit, auditor, Outcome.DISPUTED, notes="Never heard of your service")
    audit.refresh_from_db()
    assert audit.state == AuditState.DISPUTED and audit.escalated_at is not None
    assert Deal.objects.get(pk=audit.deal_id).stage == Stage.DEPOSIT


def test_a_dispute_or_decline_says_what_the_customer_said(audit, auditor):
    with pytest.raises(services.AuditRefused, match="what the customer said"):
        record(audit, auditor, Outcome.DISPUTED, notes=" ")


def test_an_attempt_and_its_stage_move_are_one_transaction(audit, auditor, rep):
    # The rep marks the deal lost mid-call: the confirmed call cannot move it,
    # and the attempt is not recorded either.
    pipeline_services.deal_move(
        deal_id=audit.deal_id, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.OTHER
    )
    with pytest.raises(IllegalMove):
        record(audit, auditor, Outcome.CONFIRMED, answers=YES)
    audit.refresh_from_db()
    assert audit.state == AuditState.QUEUED and audit.version == 1
    assert not CallAttempt.objects.exists()


def test_an_outcome_from_an_old_call_screen_is_refused(audit, auditor):
    record(audit, auditor, Outcome.NO_ANSWER)
    with pytest.raises(services.AuditChanged, match="was not saved"):
        record(audit, auditor, Outcome.NO_ANSWER, expected_version=1)
    assert CallAttempt.objects.count() == 1


def test_a_closed_audit_takes_no_more_outcomes(audit, auditor):
    record(audit, auditor, Outcome.CONFIRMED, answers=YES)
    with pytest.raises(services.AuditChanged):
        record(audit, auditor, Outcome.DISPUTED, notes="changed my mind")


def test_call_attempts_are_never_edited_or_deleted(audit, auditor):
    attempt = record(audit, auditor, Outcome.NO_ANSWER, notes="Voicemail")
    attempt.notes = "rewritten"
    with pytest.raises(TypeError):
        attempt.save()
    with pytest.raises(TypeError):
        attempt.delete()
    with pytest.raises(TypeError):
        CallAttempt.objects.update(notes="x")
    with pytest.raises(TypeError):
        CallAttempt.objects.all().delete()


def test_a_card_number_in_the_notes_is_masked(audit, auditor):
    attempt = record(audit, auditor, Outcome.NO_ANSWER, notes="Card 4111 1111 1111 1111")
    assert CallAttempt.objects.get(pk=attempt.pk).notes == "Card •••• 1111"


def test_an_attempt_keeps_the_recording_reference_and_script_version(audit, auditor, script):
    attempt = record(
        audit, auditor, Outcome.CONFIRMED, answers=YES, recording_ref="https://pbx.example/r/1"
    )
    attempt = CallAttempt.objects.get(pk=attempt.pk)
    assert attempt.recording_ref == "https://pbx.example/r/1"
    assert attempt.script == script and attempt.answers == YES


def test_the_script_is_filled_in_with_the_deals_facts(audit, script):
    rendered = script.render(audit.deal)
    texts = " ".join(q["text"] for q in rendered["questions"])
    deal = audit.deal
    assert deal.customer.name in texts and deal.title in texts
    assert "$1,000.00" in texts and str(deal.rep) in texts
    assert f"{deal.expected_delivery_date:%B}" in texts
    assert "$" not in texts.replace("$1,000.00", "")  # every placeholder was filled


def test_the_audit_deadlines_are_exposed_for_the_reminders(audit, auditor):
    from audits.selectors import audits_due, audits_overdue

    now = timezone.now()
    assert list(audits_due(now)) == [audit]
    assert list(audits_overdue(now)) == []
    later = audit.call_window_end + timedelta(minutes=1)
    assert list(audits_due(later)) == []
    assert list(audits_overdue(later)) == [audit]
    record(audit, auditor, Outcome.NO_ANSWER, now=now)
    audit.refresh_from_db()
    assert list(audits_due(now)) == []
    assert list(audits_due(audit.retry_at)) == [audit]
    assert Audit.objects.get(pk=audit.pk).is_due(audit.retry_at)
