"""Reads of the audit that span models: the queue, the deadlines, the manager's report.

The reminders read ``audits_due`` and ``audits_overdue``; every time they
need is a column of ``Audit`` (see audits/models.py).
"""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from audits.models import Audit, AuditState, CallAttempt, Outcome
from pipeline.access import team_members, team_sellers
from pipeline.models import Deal, User
from pipeline.stages import CLOSED_STAGES


def _open_audits() -> QuerySet[Audit]:
    """Open audits of live deals: a deal lost or paid meanwhile needs no call."""
    return (
        Audit.objects.open()
        .exclude(deal__stage__in=CLOSED_STAGES)
        .select_related("deal", "deal__customer", "deal__rep", "wrap_up", "claimed_by")
    )


def audits_due(now: datetime) -> QuerySet[Audit]:
    """Open audits whose call is due at ``now``, soonest first.

    Queued audits whose window has opened (and not yet closed), retries whose
    ``retry_at`` has come, call-backs whose ``callback_at`` has come. For the
    "audit due" and "audit retry" reminders to auditors; each audit's
    ``next_call_at`` is the occurrence to remind about once.
    """
    return (
        _open_audits()
        .filter(next_call_at__lte=now)
        .exclude(state=AuditState.QUEUED, call_window_end__lte=now)
        .order_by("next_call_at", "id")
    )


def audits_overdue(now: datetime) -> QuerySet[Audit]:
    """Queued audits whose call window closed with no attempt made, oldest first.

    DOMAIN.md: "an audit not started by the end of its window is overdue and
    escalates to a manager" — the deal rep's manager (``deal.rep.manager``).
    ``call_window_end`` is the occurrence to remind about once.
    """
    return (
        _open_audits()
        .filter(state=AuditState.QUEUED, call_window_end__lte=now)
        .order_by("call_window_end", "id")
    )


def audits_escalated(*, manager: User, since: datetime) -> QuerySet[Audit]:
    """Disputed and flaked audits of a manager's team since ``since``: the manager is told."""
    return (
        Audit.objects.filter(escalated_at__gte=since, deal__rep__manager=manager)
        .select_related("deal", "deal__customer", "deal__rep")
        .order_by("-escalated_at")
    )


def audits_to_call(auditor: User) -> QuerySet[Audit]:
    """The audits an auditor may call about (the call screen, the API): never a
    deal they sold themself."""
    return Audit.objects.select_related(
        "deal", "deal__customer", "deal__rep", "wrap_up", "claimed_by"
    ).exclude(deal__rep=auditor)


def audit_queue(*, auditor: User, now: datetime) -> dict[str, list[Audit]]:
    """The auditor's queue in four sections, each ordered by when the call is due.

    - ``due_now``: queued, the call window is open;
    - ``coming``: queued, the window opens later;
    - ``overdue``: queued, the window passed with no attempt;
    - ``callbacks``: call-backs and retries after a no-answer, by their time.

    Deals the auditor sold are left out: another auditor must call them.
    One query, whatever the length of the queue.
    """
    sections: dict[str, list[Audit]] = {"due_now": [], "coming": [], "overdue": [], "callbacks": []}
    audits = _open_audits().exclude(deal__rep=auditor).order_by("next_call_at", "id")
    for audit in audits:
        if audit.state != AuditState.QUEUED:
            sections["callbacks"].append(audit)
        elif audit.call_window_end <= now:
            sections["overdue"].append(audit)
        elif audit.call_window_start <= now:
            sections["due_now"].append(audit)
        else:
            sections["coming"].append(audit)
    return sections


def latest_audit(deal: Deal) -> Audit | None:
    """The deal's most recent audit, with its wrap-up and attempts, for the deal page."""
    return (
        deal.audits.select_related("wrap_up", "wrap_up__completed_by", "claimed_by")
        .prefetch_related("attempts__auditor")
        .order_by("-queued_at", "-id")
        .first()
    )


def audits_for_timeline(deal: Deal) -> QuerySet[Audit]:
    """The deal's closed audits with their calls and deciders: two queries, for its timeline."""
    return (
        deal.audits.closed()
        .select_related("decided_by")
        .prefetch_related("attempts__auditor")
        .order_by("queued_at", "id")
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def audit_report(*, manager: User, since: datetime | None = None) -> dict:
    """Per rep and per auditor: how the team's billed sales fare at audit.

    Per rep (the seller when the deal went to audit, ``Audit.rep``; a leaver's
    history stays theirs after a handover): audits queued (still open),
    confirmed, disputed, declined, flaked; the confirm rate and flake rate
    among closed audits (flakes come from deals that were not wrapped up
    well), and the average time from the customer's promise to the audit's
    confirmation. Per auditor: calls made and their outcomes, on this team's
    deals. A superuser sees everyone.
    """
    since = since or (timezone.now() - timedelta(days=90))
    # Leavers too (``is_active`` False): their history stays theirs.
    reps = team_sellers(manager).order_by("-is_active", "first_name", "username")
    team = team_members(manager).values("pk")
    # Counted by who sold the deal when it went to audit (``Audit.rep``), not by
    # the deal's rep now: a handover does not move a leaver's figures.
    audits = Audit.objects.filter(rep_id__in=team, queued_at__gte=since)
    counts = defaultdict(Counter)
    for row in audits.values("rep", "state").annotate(n=Count("id")).order_by():
        counts[row["rep"]][row["state"]] += row["n"]
    waits = defaultdict(list)
    confirmed = audits.filter(state=AuditState.CONFIRMED).values_list(
        "rep", "closed_at", "deal__promised_at"
    )
    for rep_id, closed_at, promised_at in confirmed:
        waits[rep_id].append(closed_at - promised_at)

    rows = []
    for rep in reps:
        c = counts[rep.pk]
        closed = sum(c[s] for s in ("confirmed", "disputed", "declined", "flaked"))
        rep_waits = waits[rep.pk]
        rows.append(
            {
                "rep": rep,
                "queued": c["queued"] + c["retry"] + c["call_back"],
                "confirmed": c["confirmed"],
                "disputed": c["disputed"],
                "declined": c["declined"],
                "flaked": c["flaked"],
                "closed": closed,
                "confirm_rate": _rate(c["confirmed"], closed),
                "flake_rate": _rate(c["flaked"], closed),
                "avg_to_confirmation": (
                    sum(rep_waits, timedelta()) / len(rep_waits) if rep_waits else None
                ),
            }
        )

    attempts = CallAttempt.objects.filter(audit__rep_id__in=team, at__gte=since)
    per_auditor = defaultdict(Counter)
    for row in attempts.values("auditor", "outcome").annotate(n=Count("id")).order_by():
        per_auditor[row["auditor"]][row["outcome"]] += row["n"]
    auditors = User.objects.filter(pk__in=per_auditor).order_by("first_name", "username")
    auditor_rows = [
        {
            "auditor": auditor,
            "calls": sum(per_auditor[auditor.pk].values()),
            "outcomes": [(o, per_auditor[auditor.pk][o.value]) for o in Outcome],
        }
        for auditor in auditors
    ]
    return {"since": since, "reps": rows, "auditors": auditor_rows, "outcomes": list(Outcome)}
