"""Demo audits in every state, written through the services with backdated times.

Runs after the pipeline's (and billing's) demo; the auditor is ``auditor``.
It records billing's demo money for the deals it moves, so it lives in
dashboards, above both apps.
Idempotent: once any audit exists, it does nothing.
"""

from datetime import timedelta

from django.utils import timezone

from audits import services
from audits.models import Audit, CallScript, Outcome
from billing import demo as billing_demo
from pipeline.models import Deal, User
from pipeline.stages import IllegalMove, Stage

YES = dict.fromkeys(("identity", "purchase", "price", "terms", "right_to_cancel"), "yes")


def _candidates(count: int) -> list[Deal]:
    """Open billed demo deals that can be handed to audit, deposit-stage ones first."""
    # Promised a few days ago at least, so no call window predates the promise.
    deals = (
        Deal.objects.filter(
            rep__username__in=["rep", "rep2"],
            stage__in=[Stage.DEPOSIT, Stage.PROMISED],
            promised_at__lt=timezone.now() - timedelta(days=3),
        )
        .select_related("customer", "rep")
        .order_by("-stage", "id")
    )
    chosen = []
    for deal in deals:
        if not deal.needs_audit:
            continue
        if services.wrap_up_refusal(deal) and deal.stage == Stage.PROMISED:
            try:  # a required deposit comes before the audit: record it, as billing would
                deal = billing_demo.record_money_for(
                    deal, Stage.DEPOSIT, deal.promised_at + timedelta(days=1)
                )
            except IllegalMove:
                continue
        if services.wrap_up_refusal(deal) is None:
            chosen.append(deal)
        if len(chosen) == count:
            break
    return chosen


def _hand_over(deal: Deal, *, at, start, end, concerns: str = "None.") -> Audit:
    return services.wrap_up_hand_over(
        deal_id=deal.pk,
        rep=deal.rep,
        call_window_start=start,
        call_window_end=end,
        confirmed_phone=deal.customer.phone,
        customer_will_answer=True,
        rep_gave_contact=True,
        concerns=concerns,
        call_time_reconfirmed=True,
        reconfirmed_third_time=True,
        now=at,
    )


def _call(audit: Audit, auditor: User, outcome: str, *, at, **kwargs) -> Audit:
    services.call_attempt_record(
        audit_id=audit.pk,
        auditor=auditor,
        outcome=outcome,
        expected_version=Audit.objects.get(pk=audit.pk).version,
        script=CallScript.objects.current(),
        now=at,
        **kwargs,
    )
    return Audit.objects.get(pk=audit.pk)


def seed(stdout=None) -> None:
    if Audit.objects.exists():
        return
    auditor = User.objects.filter(username="auditor").first()
    if auditor is None:
        return
    now = timezone.now().replace(second=0, microsecond=0)
    hour = timedelta(hours=1)
    deals = _candidates(9)
    plans = [
        _due_now,
        _overdue,
        _call_back,
        _retry,
        _confirmed,
        _disputed,
        _flaked,
        _coming,
        _declined,
    ]
    for deal, plan in zip(deals, plans, strict=False):
        plan(deal, auditor, now, hour)
    if stdout:
        states = ", ".join(sorted(set(Audit.objects.values_list("state", flat=True))))
        stdout.write(f"  audits: {Audit.objects.count()} ({states})")


def _due_now(deal, auditor, now, hour):
    _hand_over(deal, at=now - 20 * timedelta(minutes=1), start=now - 10 * _m(), end=now + 50 * _m())


def _coming(deal, auditor, now, hour):
    _hand_over(
        deal,
        at=now - 5 * _m(),
        start=now + 2 * hour,
        end=now + 3 * hour,
        concerns="Wants the invoice sent to accounts, not to her.",
    )


def _overdue(deal, auditor, now, hour):
    _hand_over(deal, at=now - 3 * hour, start=now - 3 * hour + 10 * _m(), end=now - 2 * hour)


def _call_back(deal, auditor, now, hour):
    audit = _hand_over(deal, at=now - 5 * hour, start=now - 5 * hour, end=now - 4 * hour)
    _call(
        audit,
        auditor,
        Outcome.CALL_BACK,
        at=now - 4 * hour - 30 * _m(),
        callback_at=now + hour,
        notes="In a meeting; call after lunch.",
    )


def _retry(deal, auditor, now, hour):
    audit = _hand_over(deal, at=now - 2 * hour, start=now - 2 * hour, end=now - hour)
    _call(audit, auditor, Outcome.NO_ANSWER, at=now - 90 * _m(), notes="Voicemail.")


def _closed_base(deal, now, hour):
    return min(deal.stage_changed_at + 2 * hour, now - 30 * hour)


def _confirmed(deal, auditor, now, hour):
    base = _closed_base(deal, now, hour)
    audit = _hand_over(deal, at=base, start=base, end=base + hour)
    _call(
        audit,
        auditor,
        Outcome.CONFIRMED,
        at=base + 20 * _m(),
        answers=YES,
        recording_ref="https://calls.example/rec/20261120-0930",
    )


def _disputed(deal, auditor, now, hour):
    base = _closed_base(deal, now, hour)
    audit = _hand_over(deal, at=base, start=base, end=base + hour)
    _call(
        audit,
        auditor,
        Outcome.DISPUTED,
        at=base + 15 * _m(),
        answers={"identity": "yes", "purchase": "no"},
        notes="Never heard of your service; says nobody there ordered anything.",
        recording_ref="rec-44871",
    )


def _declined(deal, auditor, now, hour):
    base = _closed_base(deal, now, hour)
    audit = _hand_over(deal, at=base, start=base, end=base + hour)
    _call(
        audit,
        auditor,
        Outcome.DECLINED,
        at=base + 25 * _m(),
        answers={"identity": "yes", "purchase": "yes", "price": "no"},
        notes="Found it cheaper elsewhere; cancels the order.",
    )


def _flaked(deal, auditor, now, hour):
    base = _closed_base(deal, now, hour)
    audit = _hand_over(deal, at=base, start=base, end=base + hour, concerns="Busy week.")
    for n in range(3):
        audit = _call(audit, auditor, Outcome.NO_ANSWER, at=base + (n * 2 + 0.5) * hour)


def _m() -> timedelta:
    return timedelta(minutes=1)
