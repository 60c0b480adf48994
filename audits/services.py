"""Business rules of the audit that write: wrapping up, claiming, recording calls.

DOMAIN.md, "The audit: closed twice". Segregation of duties is checked here,
not only in the views: an auditor never audits a deal they sold, only an
auditor records an outcome, and nobody edits one once recorded.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audits.models import (
    FLAKE_AFTER_NO_ANSWERS,
    SCRIPT_QUESTIONS,
    Audit,
    AuditState,
    CallAttempt,
    CallScript,
    DisputeDecision,
    Outcome,
    WrapUpChecklist,
)
from pipeline.access import manages_rep
from pipeline.events import deal_changed_on_commit
from pipeline.history import history_record_update
from pipeline.models import Deal, User
from pipeline.services import deal_move
from pipeline.stages import (
    BEFORE_AUDIT_STAGES,
    SYSTEM,
    AuditFlag,
    IllegalMove,
    LostReason,
    Stage,
    check_move,
)


class AuditRefused(Exception):
    """The audit rules refuse this; nothing was written. The message is for the user."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


class AuditChanged(Exception):
    """Someone else recorded an outcome (or took the audit) first; nothing was written."""


class NotAllowed(Exception):
    """Segregation of duties: this person may not do this to this audit."""


@dataclass(frozen=True)
class OutcomeEffect:
    """What an outcome does to the audit and to the deal (None: the deal stays)."""

    audit_state: AuditState
    deal_stage: Stage | None = None
    lost_reason: str = ""


# The outcome → stage mapping. A no-answer is RETRY until the third, which
# flakes (see call_attempt_record); the deal then stays with the rep.
OUTCOME_EFFECTS: dict[str, OutcomeEffect] = {
    Outcome.CONFIRMED: OutcomeEffect(AuditState.CONFIRMED, Stage.AUDIT_CONFIRMED),
    Outcome.NO_ANSWER: OutcomeEffect(AuditState.RETRY),
    Outcome.CALL_BACK: OutcomeEffect(AuditState.CALL_BACK),
    Outcome.DISPUTED: OutcomeEffect(AuditState.DISPUTED),
    Outcome.DECLINED: OutcomeEffect(AuditState.DECLINED, Stage.LOST, LostReason.DECLINED_AT_AUDIT),
}


def wrap_up_refusal(deal: Deal) -> str | None:
    """Why this deal cannot be wrapped up and handed to audit now, or None if it can.

    Only a billed deal is audited; it must be open, not audited yet, with no
    audit already under way, and able to move to Audit confirmed when the
    customer confirms (a required deposit comes first).
    """
    if not deal.needs_audit:
        return deal.why_stage_not_needed(Stage.AUDIT_CONFIRMED)
    if deal.stage in (Stage.LOST, Stage.WRITTEN_OFF):
        return f"This deal is {deal.get_stage_display().lower()}: there is nothing to audit."
    if deal.stage not in (Stage.PROMISED, Stage.DEPOSIT):
        return f"This deal is in {deal.get_stage_display()}: it is past the audit."
    if deal.is_disputed:
        return (
            "The customer disputed this sale at audit: the manager decides first "
            "(lost, or back to you to re-close)."
        )
    if deal.audits.open().exists():
        return "This deal is already in the audit queue."
    try:
        check_move(deal, Stage.AUDIT_CONFIRMED, SYSTEM)
    except IllegalMove as exc:
        return str(exc)
    return None


def default_call_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Within the next hour, from the next quarter hour (what reps agree most).

    Shown as an example next to the wrap-up's window, never filled in for the rep.
    """
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    start = now + timedelta(minutes=(15 - now.minute % 15) % 15)
    return start, start + timedelta(minutes=settings.CLEARED_AUDIT_WINDOW_MINUTES)


@transaction.atomic
def wrap_up_hand_over(
    *,
    deal_id: int,
    rep: User,
    call_window_start: datetime,
    call_window_end: datetime,
    confirmed_phone: str,
    customer_will_answer: bool,
    rep_gave_contact: bool,
    concerns: str,
    call_time_reconfirmed: bool,
    reconfirmed_third_time: bool,
    now: datetime | None = None,
) -> Audit:
    """Record the rep's wrap-up checklist and queue the deal for its audit call.

    DOMAIN.md: "An audit cannot be queued without it." Every item is required;
    the window must end after it starts and not be over already. The deal row
    is locked so two hand-overs of one deal end with one audit.
    """
    now = now or timezone.now()
    deal = Deal.objects.select_for_update().get(pk=deal_id)
    if rep.is_auditor and not (rep.is_rep or rep.is_manager):
        raise NotAllowed("Auditors do not wrap up sales.")
    if refusal := wrap_up_refusal(deal):
        raise AuditRefused(refusal)
    ticks = {
        "customer_will_answer": customer_will_answer,
        "rep_gave_contact": rep_gave_contact,
        "call_time_reconfirmed": call_time_reconfirmed,
        "reconfirmed_third_time": reconfirmed_third_time,
    }
    for field, ticked in ticks.items():
        if not ticked:
            label = WrapUpChecklist._meta.get_field(field).verbose_name
            raise AuditRefused(f"Tick “{label}”: every item is required.", field=field)
    if not confirmed_phone.strip():
        raise AuditRefused("Confirm the number the auditor will call.", field="confirmed_phone")
    if not concerns.strip():
        raise AuditRefused(
            "Ask about concerns and write what the customer said (or “none”).", field="concerns"
        )
    if call_window_end <= call_window_start:
        raise AuditRefused("The window must end after it starts.", field="call_window_end")
    if call_window_end <= now:
        raise AuditRefused("That window is already over.", field="call_window_end")
    wrap_up = WrapUpChecklist.objects.create(
        deal=deal,
        call_window_start=call_window_start,
        call_window_end=call_window_end,
        confirmed_phone=confirmed_phone.strip(),
        customer_will_answer=True,
        rep_gave_contact=True,
        concerns=concerns.strip(),
        call_time_reconfirmed=True,
        reconfirmed_third_time=True,
        completed_by=rep,
        completed_at=now,
    )
    # Wrapped up again after a flake: the rep's "re-close" is answered.
    _deal_set_audit_flag(deal.pk, AuditFlag.NONE, now, only_if=AuditFlag.FLAKED)
    # The auditors' "audit due" reminder, now rather than at the next scan.
    deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    return Audit.objects.create(
        deal=deal,
        rep_id=deal.rep_id,
        wrap_up=wrap_up,
        state=AuditState.QUEUED,
        call_window_start=call_window_start,
        call_window_end=call_window_end,
        next_call_at=call_window_start,
        queued_at=now,
    )


def _deal_set_audit_flag(deal_id: int, flag: str, now: datetime, only_if: str | None = None) -> int:
    """Set (or clear) the deal's audit flag, bumping its version: one UPDATE.

    Only a deal before its audit carries a flag (a database constraint); a
    deal lost meanwhile keeps none.
    """
    deals = Deal.objects.filter(pk=deal_id)
    if flag:
        deals = deals.filter(stage__in=BEFORE_AUDIT_STAGES)
    if only_if is not None:
        deals = deals.filter(audit_flag=only_if)
    changed = deals.update(
        audit_flag=flag,
        audit_flag_at=now if flag else None,
        version=F("version") + 1,
        updated_at=now,
    )
    if changed:
        history_record_update(Deal, [deal_id])
    return changed


def no_answer_refusal(audit: Audit, now: datetime | None = None) -> str | None:
    """Why a no-answer cannot be recorded yet, or None (DOMAIN.md: "retry later").

    After a no-answer the next one counts only from ``retry_at``
    (CLEARED_AUDIT_RETRY_MINUTES later): three quick redials are not three tries.
    """
    now = now or timezone.now()
    if audit.state == AuditState.RETRY and audit.retry_at and now < audit.retry_at:
        until = timezone.localtime(audit.retry_at).strftime("%H:%M")
        last = audit.retry_at - timedelta(minutes=settings.CLEARED_AUDIT_RETRY_MINUTES)
        return (
            f"A no-answer was recorded {_minutes(now - last)} ago: the next try counts "
            f"from {until}, in {_minutes(audit.retry_at - now)}. Call again then."
        )
    return None


def _minutes(span: timedelta) -> str:
    """A span as people say it: "1 minute", "47 minutes", "2 h 05 min" (rounded up)."""
    minutes = max(1, -(-int(span.total_seconds()) // 60))
    if minutes < 60:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def call_window_refusal(audit: Audit, now: datetime | None = None) -> str | None:
    """Why no attempt may be recorded yet, or None: the customer's call window has not
    opened. Calls made before it do not count (three early no-answers flaked
    deals); only a call-back the customer asked for, once its time has come,
    may be made earlier."""
    now = now or timezone.now()
    if now >= audit.call_window_start:
        return None
    if audit.callback_at is not None and audit.callback_at <= now:
        return None
    opens = timezone.localtime(audit.call_window_start)
    return (
        f"The customer's call window opens {opens:%a %-d %b at %H:%M}, in "
        f"{_minutes(audit.call_window_start - now)}: a call before it is not recorded. "
        "Call earlier only when the customer asked for a call-back."
    )


def _check_may_call(audit: Audit, auditor: User) -> None:
    """Segregation of duties: only an auditor, never on a deal they sold."""
    if not auditor.is_auditor:
        raise NotAllowed("Only an auditor records an audit call.")
    if audit.deal.rep_id == auditor.pk:
        raise NotAllowed("You sold this deal: another auditor must make this call.")


def audit_claim(*, audit_id: int, auditor: User, now: datetime | None = None) -> Audit:
    """Claim an open audit for a call, so no other auditor phones the same customer.

    A compare-and-set UPDATE: it only matches while the audit is open and
    unclaimed (or the claim has lapsed, or is the auditor's own, which it
    renews), so of two auditors claiming at once exactly one gets it. The
    claim lapses after CLEARED_AUDIT_CLAIM_MINUTES if the call is abandoned.
    """
    now = now or timezone.now()
    audit = Audit.objects.select_related("deal", "claimed_by").get(pk=audit_id)
    _check_may_call(audit, auditor)
    expires = now + timedelta(minutes=settings.CLEARED_AUDIT_CLAIM_MINUTES)
    claimed = (
        Audit.objects.open()
        .filter(pk=audit_id)
        .filter(Q(claimed_by__isnull=True) | Q(claim_expires_at__lte=now) | Q(claimed_by=auditor))
        .update(claimed_by=auditor, claim_expires_at=expires)
    )
    audit = Audit.objects.select_related("deal", "claimed_by").get(pk=audit_id)
    if not claimed:
        if not audit.is_open:
            raise AuditChanged(f"This audit is already closed: {audit.get_state_display()}.")
        raise AuditChanged(f"{audit.claimed_by} is already calling this customer.")
    return audit


def audit_release(*, audit_id: int, auditor: User) -> bool:
    """Give up one's own claim (the call can't be made now). True if one was released."""
    return bool(
        Audit.objects.filter(pk=audit_id, claimed_by=auditor).update(
            claimed_by=None, claim_expires_at=None
        )
    )


@transaction.atomic
def call_attempt_record(
    *,
    audit_id: int,
    auditor: User,
    outcome: str,
    expected_version: int,
    script: CallScript,
    answers: dict[str, str] | None = None,
    callback_at: datetime | None = None,
    recording_ref: str = "",
    notes: str = "",
    now: datetime | None = None,
) -> CallAttempt:
    """Record one audit call and apply its outcome, in one transaction.

    - confirmed (every script answer yes): the deal moves to Audit confirmed,
      as the system, with the auditor named on the stage event;
    - no answer: retried CLEARED_AUDIT_RETRY_MINUTES later, and refused before
      then (``no_answer_refusal``); the third flakes the audit and the deal is
      flagged flaked: back to the rep, reminded at once, to re-close;
    - call back: at the time the customer named;
    - disputed: the audit closes and the deal is flagged disputed: off the
      billing path and frozen until the rep's manager decides
      (``audit_dispute_decide``); the rep and the manager are reminded at once;
    - declined: the deal is lost, "declined at audit".

    The audit row is locked and its version compared, so of two outcomes
    submitted at once exactly one is recorded; the other raises AuditChanged.
    An auditor whose claim lapsed may still record the call they made, as
    long as no other auditor has claimed the audit since.
    """
    now = now or timezone.now()
    answers = {k: v for k, v in (answers or {}).items() if v in ("yes", "no")}
    audit = Audit.objects.select_for_update().select_related("deal").get(pk=audit_id)
    _check_may_call(audit, auditor)
    if audit.version != expected_version or not audit.is_open:
        raise AuditChanged(
            "Another outcome was recorded for this audit while you were on the call "
            f"(it is now {audit.get_state_display().lower()}). Yours was not saved."
        )
    if audit.claim_is_live(now) and audit.claimed_by_id != auditor.pk:
        raise AuditChanged(f"{audit.claimed_by} has claimed this audit: yours was not saved.")
    if refusal := call_window_refusal(audit, now):
        raise AuditRefused(refusal)
    if outcome not in OUTCOME_EFFECTS:
        raise AuditRefused("Choose what happened on the call.", field="outcome")
    if outcome == Outcome.CONFIRMED:
        missing = [label for key, label in SCRIPT_QUESTIONS if answers.get(key) != "yes"]
        if missing:
            raise AuditRefused(
                "A confirmed sale needs a yes to every question; not yes: "
                f"{', '.join(missing)}. Record it as disputed or declined instead.",
                field="outcome",
            )
    if outcome == Outcome.NO_ANSWER and (refusal := no_answer_refusal(audit, now)):
        raise AuditRefused(refusal, field="outcome")
    if outcome == Outcome.CALL_BACK and (callback_at is None or callback_at <= now):
        raise AuditRefused("Give the time the customer asked to be called back.", "callback_at")
    if outcome in (Outcome.DISPUTED, Outcome.DECLINED) and not notes.strip():
        raise AuditRefused("Write what the customer said.", field="notes")

    attempt = CallAttempt.objects.create(
        audit=audit,
        auditor=auditor,
        outcome=outcome,
        script=script,
        answers=answers,
        callback_at=callback_at if outcome == Outcome.CALL_BACK else None,
        recording_ref=recording_ref.strip(),
        notes=notes.strip(),
        at=now,
    )
    effect = OUTCOME_EFFECTS[outcome]
    state = effect.audit_state
    changes = {
        "claimed_by": None,
        "claim_expires_at": None,
        "version": F("version") + 1,
    }
    if outcome == Outcome.NO_ANSWER:
        changes["no_answer_count"] = audit.no_answer_count + 1
        if audit.no_answer_count + 1 >= FLAKE_AFTER_NO_ANSWERS:
            state = AuditState.FLAKED
        else:
            changes["retry_at"] = now + timedelta(minutes=settings.CLEARED_AUDIT_RETRY_MINUTES)
            changes["next_call_at"] = changes["retry_at"]
    elif outcome == Outcome.CALL_BACK:
        changes["callback_at"] = callback_at
        changes["next_call_at"] = callback_at
    changes["state"] = state
    if state in (AuditState.CONFIRMED, AuditState.DISPUTED, AuditState.DECLINED, AuditState.FLAKED):
        changes["closed_at"] = now
        changes["next_call_at"] = None
    if state in (AuditState.DISPUTED, AuditState.FLAKED):
        changes["escalated_at"] = now
    Audit.objects.filter(pk=audit.pk).update(**changes)
    if state == AuditState.DISPUTED:
        # Off the billing path at once; the manager decides (audit_dispute_decide).
        _deal_set_audit_flag(audit.deal_id, AuditFlag.DISPUTED, now)
    elif state == AuditState.FLAKED:
        _deal_set_audit_flag(audit.deal_id, AuditFlag.FLAKED, now)

    if effect.deal_stage is not None:
        # Raises IllegalMove (rolling the attempt back too) if the deal moved
        # on meanwhile, e.g. the rep marked it lost during the call.
        deal_move(
            deal_id=audit.deal_id,
            to_stage=effect.deal_stage,
            actor=auditor,
            as_role=SYSTEM,
            lost_reason=effect.lost_reason,
            reason=_stage_reason(outcome, attempt),
            at=now,
        )
    deal_changed_on_commit(deal_id=audit.deal_id, actor_id=auditor.pk)
    return attempt


def _stage_reason(outcome: str, attempt: CallAttempt) -> str:
    if outcome == Outcome.CONFIRMED:
        return (
            f"The customer confirmed the sale on the audit call (script v{attempt.script.version})."
        )
    return f"The customer declined on the audit call: {attempt.notes}"


def dispute_refusal(audit: Audit, decision: str) -> str | None:
    """Why this decision cannot be taken on this audit, or None.

    A second dispute of the same deal is final: only "lost" is left.
    """
    if decision not in (DisputeDecision.LOST, DisputeDecision.RE_CLOSE):
        return "Choose: mark it lost, or send it back to the rep to re-close."
    if decision == DisputeDecision.RE_CLOSE and is_second_dispute(audit):
        return "This sale was disputed twice: a second dispute is final, mark it lost."
    return None


def is_second_dispute(audit: Audit) -> bool:
    """The deal was disputed at an earlier audit too."""
    return (
        Audit.objects.filter(deal_id=audit.deal_id, state=AuditState.DISPUTED)
        .exclude(pk=audit.pk)
        .exists()
    )


def may_decide(user: User, deal: Deal) -> bool:
    """The deal rep's manager decides a dispute (a superuser may too); never the rep."""
    return manages_rep(user, deal.rep)


@transaction.atomic
def audit_dispute_decide(
    *,
    audit_id: int,
    manager: User,
    decision: str,
    reason: str,
    now: datetime | None = None,
) -> Audit:
    """The manager's decision on a sale disputed at audit (DOMAIN.md, "The audit").

    - lost: the deal is marked lost, "disputed at audit", with the reason;
    - re_close: the deal goes back to the rep, who re-closes it with the
      customer and wraps it up again for a new audit. A second dispute is
      final: then only "lost" is possible.

    The audit row is locked, then the deal (the order call_attempt_record
    uses), and the decision is a compare-and-set on an undecided dispute: a
    double submission or two managers deciding at once record one decision;
    the other raises AuditChanged.
    """
    now = now or timezone.now()
    audit = Audit.objects.select_for_update().select_related("deal__rep").get(pk=audit_id)
    if not may_decide(manager, audit.deal):
        raise NotAllowed("Only the rep's manager decides a disputed sale.")
    if not audit.awaits_decision:
        raise AuditChanged(
            "This dispute was decided already: "
            f"{audit.get_decision_display().lower() or audit.get_state_display().lower()}."
        )
    if refusal := dispute_refusal(audit, decision):
        raise AuditRefused(refusal, field="decision")
    if not reason.strip():
        raise AuditRefused("Say why: the reason goes on the deal's timeline.", field="reason")
    decided = Audit.objects.filter(pk=audit.pk, decision=DisputeDecision.NONE).update(
        decision=decision,
        decision_reason=reason.strip(),
        decided_by=manager,
        decided_at=now,
        version=F("version") + 1,
    )
    if not decided:  # pragma: no cover - the row lock makes this unreachable on PostgreSQL
        raise AuditChanged("This dispute was decided already.")
    Deal.objects.select_for_update().get(pk=audit.deal_id)
    _deal_set_audit_flag(audit.deal_id, AuditFlag.NONE, now, only_if=AuditFlag.DISPUTED)
    if decision == DisputeDecision.LOST:
        deal_move(
            deal_id=audit.deal_id,
            to_stage=Stage.LOST,
            actor=manager,
            lost_reason=LostReason.DISPUTED_AT_AUDIT,
            reason=f"Disputed at audit; the manager decided: {reason.strip()}",
            at=now,
        )
    deal_changed_on_commit(deal_id=audit.deal_id, actor_id=manager.pk)
    audit.refresh_from_db()
    return audit
