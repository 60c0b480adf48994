"""Two auditors at once on one audit: exactly one wins (PostgreSQL row locks, real threads)."""

import pytest

from audits import services
from audits.models import Audit, AuditState, CallAttempt, CallScript, Outcome
from pipeline.models import Deal, StageEvent
from pipeline.stages import Stage
from tests.audits.conftest import YES, checklist
from tests.factories import DealFactory
from tests.race import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres("row-lock races: SQLite has no row locks"),
]


def _queued_audit(rep) -> Audit:
    deal = DealFactory(rep=rep, stage=Stage.DEPOSIT)
    return services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())


@pytest.mark.parametrize("round_", range(3))
def test_two_auditors_claiming_at_once_never_both_get_it(rep, auditor, second_auditor, round_):
    audit = _queued_audit(rep)
    results = race(
        lambda: services.audit_claim(audit_id=audit.pk, auditor=auditor),
        lambda: services.audit_claim(audit_id=audit.pk, auditor=second_auditor),
    )
    winners = [r for r in results if isinstance(r, Audit)]
    losers = [r for r in results if isinstance(r, services.AuditChanged)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert Audit.objects.get(pk=audit.pk).claimed_by == winners[0].claimed_by
    assert "already calling" in str(losers[0])


def test_two_auditors_recording_outcomes_at_once_record_one(rep, auditor, second_auditor):
    audit = _queued_audit(rep)
    script = CallScript.objects.current()
    results = race(
        lambda: services.call_attempt_record(
            audit_id=audit.pk,
            auditor=auditor,
            outcome=Outcome.CONFIRMED,
            answers=YES,
            expected_version=1,
            script=script,
        ),
        lambda: services.call_attempt_record(
            audit_id=audit.pk,
            auditor=second_auditor,
            outcome=Outcome.DISPUTED,
            notes="Never heard of your service",
            expected_version=1,
            script=script,
        ),
    )
    winners = [r for r in results if isinstance(r, CallAttempt)]
    losers = [r for r in results if isinstance(r, services.AuditChanged)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert CallAttempt.objects.count() == 1
    fresh = Audit.objects.get(pk=audit.pk)
    assert fresh.version == 2
    assert (
        fresh.state
        == {
            Outcome.CONFIRMED: AuditState.CONFIRMED,
            Outcome.DISPUTED: AuditState.DISPUTED,
        }[winners[0].outcome]
    )
    deal = Deal.objects.get(pk=audit.deal_id)
    confirmed = winners[0].outcome == Outcome.CONFIRMED
    assert (deal.stage == Stage.AUDIT_CONFIRMED) == confirmed
    assert StageEvent.objects.filter(deal=deal, to_stage=Stage.AUDIT_CONFIRMED).count() == int(
        confirmed
    )
    assert "was not saved" in str(losers[0])


def test_a_double_submitted_no_answer_counts_once(rep, auditor):
    audit = _queued_audit(rep)
    script = CallScript.objects.current()

    def no_answer():
        return services.call_attempt_record(
            audit_id=audit.pk,
            auditor=auditor,
            outcome=Outcome.NO_ANSWER,
            expected_version=1,
            script=script,
        )

    results = race(no_answer, no_answer)
    assert sum(isinstance(r, CallAttempt) for r in results) == 1, results
    assert Audit.objects.get(pk=audit.pk).no_answer_count == 1


def test_two_hand_overs_of_one_deal_at_once_queue_one_audit(rep, manager):
    deal = DealFactory(rep=rep, stage=Stage.DEPOSIT)
    results = race(
        lambda: services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist()),
        lambda: services.wrap_up_hand_over(deal_id=deal.pk, rep=manager, **checklist()),
    )
    assert sum(isinstance(r, Audit) for r in results) == 1, results
    assert sum(isinstance(r, services.AuditRefused) for r in results) == 1, results
    assert Audit.objects.filter(deal=deal).count() == 1


def test_two_managers_deciding_a_dispute_at_once_record_one_decision(rep, manager, auditor):
    from audits.models import DisputeDecision
    from pipeline.models import User

    audit = _queued_audit(rep)
    services.call_attempt_record(
        audit_id=audit.pk,
        auditor=auditor,
        outcome=Outcome.DISPUTED,
        expected_version=1,
        script=CallScript.objects.current(),
        notes="Never heard of you.",
    )
    superuser = User.objects.create_superuser("boss", password="pw")
    results = race(
        lambda: services.audit_dispute_decide(
            audit_id=audit.pk, manager=manager, decision=DisputeDecision.LOST, reason="Lost."
        ),
        lambda: services.audit_dispute_decide(
            audit_id=audit.pk, manager=superuser, decision=DisputeDecision.RE_CLOSE, reason="Back."
        ),
    )
    assert sum(isinstance(r, Audit) for r in results) == 1, results
    assert sum(isinstance(r, services.AuditChanged) for r in results) == 1, results
    decided = Audit.objects.get(pk=audit.pk)
    deal = Deal.objects.get(pk=audit.deal_id)
    assert deal.audit_flag == ""
    assert (deal.stage == Stage.LOST) == (decided.decision == DisputeDecision.LOST)
