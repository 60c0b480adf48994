"""The rules read from audits: due, overdue (escalation), retry / call back;
flaked and disputed at audit (from the deal's audit flag).

Facts: ``facts.audits`` (every audit of the deal) and ``facts.last_auditor_id``
(who made the deal's latest call), loaded by ``load``."""

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F, OuterRef, Subquery

from audits.models import Audit, AuditState, CallAttempt
from pipeline.compiled import Compiled, InBatch
from reminders.models import ReminderKind
from reminders.rules.base import (
    AUDIT_QUEUE,
    MANAGER,
    REP,
    Facts,
    Gone,
    Known,
    Rule,
    Want,
    Window,
    day_text,
    iso_moment,
)
from reminders.rules.records import AuditFact


def _audits():
    latest = Subquery(
        CallAttempt.objects.filter(audit__deal_id=OuterRef("deal_id"))
        .order_by("-at", "-id")
        .values("auditor_id")[:1]
    )
    rows = Audit.objects.order_by().filter(InBatch(F("deal_id"), "ids")).annotate(auditor=latest)
    return rows.values_list(
        "deal_id", "auditor", "id", "state", "next_call_at", "call_window_start",
        "call_window_end", "no_answer_count",
    )  # fmt: skip


_AUDITS = Compiled(_audits)  # built once: the batch's ids are its parameter


def load(facts: dict[int, Facts]) -> None:
    """Every audit of the batch's deals, each row with its deal's latest auditor: one query."""
    for deal_id, auditor, *fields in _AUDITS.rows(ids=list(facts)):
        facts[deal_id].audits.append(AuditFact(*fields))
        facts[deal_id].last_auditor_id = auditor


def latest_auditor(f: Facts) -> int | None:
    return f.last_auditor_id


def _occ(audit: AuditFact) -> str:
    """One reminder per audit: 'a<audit id>'."""
    return f"a{audit.id}"


def _call_occ(audit: AuditFact) -> str | None:
    """One reminder per audit and planned call: 'a<audit id>@<next call time>'."""
    if audit.next_call_at is None:
        return None
    return f"a{audit.id}@{iso_moment(audit.next_call_at)}"


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)


def _clock(value: datetime) -> str:
    """'Mon 23 Nov, 14:30' in the default zone."""
    local = value.astimezone(_zone())
    return f"{day_text(local.date())}, {local:%H:%M}"


def _no_open_audit(states: tuple[str, ...], occ: Callable[[AuditFact], str]):
    """Gone when the reminder's audit (named by its occurrence) is no longer in ``states``."""

    def when(f: Facts, known: Known) -> bool:
        return not any(a.state in states and occ(a) == known.occurrence for a in f.audits)

    return when


# --- due, overdue, retry ------------------------------------------------------------


def _audit_due(f: Facts, window: Window):
    for audit in f.audits:
        if audit.state == AuditState.QUEUED and audit.next_call_at is not None:
            yield Want(
                _occ(audit),
                audit.call_window_start,
                lambda audit=audit: (
                    f"Call window {_clock(audit.call_window_start)}–"
                    f"{audit.call_window_end.astimezone(_zone()):%H:%M}: "
                    "phone the customer and close the sale a second time."
                ),
                at=audit.next_call_at,
            )


AUDIT_DUE = Rule(
    kind=ReminderKind.AUDIT_DUE,
    owner=AUDIT_QUEUE,
    wants=_audit_due,
    gone=(
        Gone(
            _no_open_audit((AuditState.QUEUED,), _occ),
            "The audit call was made.",
            by=latest_auditor,
        ),
    ),
)


def _audit_overdue(f: Facts, window: Window):
    # Only once the window has closed: an escalation is never "coming".
    for audit in f.audits:
        if audit.state == AuditState.QUEUED and audit.call_window_end <= window.now:
            yield Want(
                _occ(audit),
                audit.call_window_end,
                lambda audit=audit: (
                    f"Audit window closed {_clock(audit.call_window_end)} with no call attempt."
                ),
            )


def _windows_closing(f: Facts, window: Window):
    """Its mind changes when a queued audit's window closes."""
    return (a.call_window_end for a in f.audits if a.state == AuditState.QUEUED)


AUDIT_OVERDUE = Rule(
    kind=ReminderKind.AUDIT_OVERDUE,
    owner=MANAGER,
    wants=_audit_overdue,
    wakes=_windows_closing,
    gone=(
        Gone(
            _no_open_audit((AuditState.QUEUED,), _occ),
            "An auditor called.",
            by=latest_auditor,
        ),
    ),
)


def _audit_retry(f: Facts, window: Window):
    for audit in f.audits:
        if audit.state in (AuditState.RETRY, AuditState.CALL_BACK) and audit.next_call_at:
            if audit.state == AuditState.CALL_BACK:
                why = f"The customer asked to be called back {_clock(audit.next_call_at)}."
            else:
                why = (
                    f"No answer ({audit.no_answer_count} so far): call again from "
                    f"{_clock(audit.next_call_at)}."
                )
            yield Want(_call_occ(audit), audit.next_call_at, why)


AUDIT_RETRY = Rule(
    kind=ReminderKind.AUDIT_RETRY,
    owner=AUDIT_QUEUE,
    wants=_audit_retry,
    gone=(
        Gone(
            _no_open_audit((AuditState.RETRY, AuditState.CALL_BACK), _call_occ),
            "Called again, or the audit closed.",
            by=latest_auditor,
        ),
    ),
)


# --- flaked and disputed at audit ---------------------------------------------------
# Read from the deal's own audit flag (``Deal.audit_flag``, written by audits
# with the outcome). The occurrence is the flag's time, so a second flake or
# dispute of the same deal is a new reminder.


def _audit_flag_rule(flag: str, kind: str, owner: str, why: Callable[[datetime], str]) -> Rule:
    suffix = "rep" if owner == REP else "manager"

    def wants(f: Facts, window: Window):
        if f.audit_flag == flag and f.audit_flag_at is not None:
            occ = f"{iso_moment(f.audit_flag_at)}/{suffix}"
            yield Want(occ, f.audit_flag_at, why(f.audit_flag_at))

    return Rule(
        kind=kind,
        owner=owner,
        wants=wants,
        owns=lambda occurrence: occurrence.endswith(f"/{suffix}"),
        gone=(
            Gone(
                lambda f, known: f.audit_flag != flag,
                "Answered: wrapped up again, decided by the manager, or the deal moved on.",
            ),
        ),
        hovers=False,  # "at once": a second flake or dispute is news, not a nag
    )


AUDIT_FLAKED = _audit_flag_rule(
    "flaked",
    ReminderKind.AUDIT_FLAKED,
    REP,
    lambda at: (
        f"Flaked at audit — re-close: three calls on {day_text(at)}, "
        "no answer. Re-close with the customer, then wrap it up again."
    ),
)
AUDIT_DISPUTED_REP = _audit_flag_rule(
    "disputed",
    ReminderKind.AUDIT_DISPUTED,
    REP,
    lambda at: (
        f"Disputed at audit on {day_text(at)}: the customer does not "
        "recognise the sale. Your manager decides: lost, or back to you to re-close."
    ),
)
AUDIT_DISPUTED_MANAGER = _audit_flag_rule(
    "disputed",
    ReminderKind.AUDIT_DISPUTED,
    MANAGER,
    lambda at: (
        f"Disputed at audit on {day_text(at)}: decide — mark it lost, "
        "or send it back to the rep to re-close."
    ),
)
