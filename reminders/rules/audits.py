"""The rules read from audits: due, overdue (escalation), retry / call back;
flaked and disputed at audit (from the deal's audit flag)."""

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Concat
from django.utils.formats import date_format

from audits.models import Audit, AuditState, CallAttempt
from reminders.models import ReminderKind
from reminders.rules.base import (
    AUDIT_QUEUE,
    DEAL_ROW,
    MANAGER,
    REP,
    Gone,
    Rule,
    Window,
    day_text,
    deals_for_scan,
    without_reminder,
)

# --- audits: due, overdue (escalation), retry / call back ----------------------------
# Read from audits.Audit's deadlines (call window, next_call_at).

AUDIT_ROW = {
    "deal_pk": F("deal_id"),
    "rep_pk": F("deal__rep_id"),
    "manager_pk": F("deal__rep__manager_id"),
    "tz": F("deal__rep__time_zone"),
}


def _audits(deal_ids: list[int] | None) -> QuerySet:
    audits = Audit.objects.order_by()
    return audits if deal_ids is None else audits.filter(deal_id__in=deal_ids)


def _audit_occ():
    """One reminder per audit: 'a<audit id>'."""
    return Concat(Value("a"), Cast("id", CharField()), output_field=CharField())


def _audit_call_occ():
    """One reminder per audit and planned call: 'a<audit id>@<next call time>'."""
    return Concat(
        Value("a"),
        Cast("id", CharField()),
        Value("@"),
        Cast("next_call_at", CharField()),
        output_field=CharField(),
    )


def _clock(value: datetime) -> str:
    zone = ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)
    return date_format(value.astimezone(zone), "D j M, H:i")


def _no_open_audit(states: tuple[str, ...], occ) -> Callable[[], Exists]:
    """The reminder's audit (named by its occurrence) is no longer in ``states``."""

    def when() -> Exists:
        audits = (
            _audits(None)
            .filter(deal_id=OuterRef("deal_id"), state__in=states)
            .annotate(occ=occ())
            .filter(occ=OuterRef("occurrence"))
        )
        return ~Exists(audits)

    return when


def _latest_auditor():
    return Subquery(
        CallAttempt.objects.filter(audit__deal_id=OuterRef("deal_id"))
        .order_by("-at", "-id")
        .values("auditor_id")[:1]
    )


def _find_audit_due(window: Window, deal_ids: list[int] | None) -> QuerySet:
    audits = _audits(deal_ids).filter(
        state=AuditState.QUEUED, next_call_at__gt=window.since, next_call_at__lte=window.horizon
    )
    return without_reminder(
        audits.annotate(occ=_audit_occ()), ReminderKind.AUDIT_DUE, "deal_id"
    ).values("call_window_start", "call_window_end", "occ", **AUDIT_ROW)


AUDIT_DUE = Rule(
    kind=ReminderKind.AUDIT_DUE,
    owner=AUDIT_QUEUE,
    find=_find_audit_due,
    due=lambda row: row["call_window_start"],
    why=lambda row: (
        f"Call window {_clock(row['call_window_start'])}–"
        f"{row['call_window_end'].astimezone(ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)):%H:%M}: "
        "phone the customer and close the sale a second time."
    ),
    gone=(
        Gone(
            _no_open_audit(("queued",), _audit_occ),
            "The audit call was made.",
            by=_latest_auditor,
        ),
    ),
)


def _find_audit_overdue(window: Window, deal_ids: list[int] | None) -> QuerySet:
    # Only once the window has closed: an escalation is never "coming".
    audits = _audits(deal_ids).filter(
        state=AuditState.QUEUED, call_window_end__gt=window.since, call_window_end__lte=window.now
    )
    return without_reminder(
        audits.annotate(occ=_audit_occ()), ReminderKind.AUDIT_OVERDUE, "deal_id"
    ).values("call_window_end", "occ", **AUDIT_ROW)


AUDIT_OVERDUE = Rule(
    kind=ReminderKind.AUDIT_OVERDUE,
    owner=MANAGER,
    find=_find_audit_overdue,
    due=lambda row: row["call_window_end"],
    why=lambda row: f"Audit window closed {_clock(row['call_window_end'])} with no call attempt.",
    gone=(
        Gone(
            _no_open_audit(("queued",), _audit_occ),
            "An auditor called.",
            by=_latest_auditor,
        ),
    ),
)


def _find_audit_retry(window: Window, deal_ids: list[int] | None) -> QuerySet:
    audits = _audits(deal_ids).filter(
        state__in=[AuditState.RETRY, AuditState.CALL_BACK],
        next_call_at__gt=window.since,
        next_call_at__lte=window.horizon,
    )
    return without_reminder(
        audits.annotate(occ=_audit_call_occ()), ReminderKind.AUDIT_RETRY, "deal_id"
    ).values("state", "next_call_at", "no_answer_count", "occ", **AUDIT_ROW)


def _retry_why(row: dict) -> str:
    if row["state"] == "call_back":
        return f"The customer asked to be called back {_clock(row['next_call_at'])}."
    return (
        f"No answer ({row['no_answer_count']} so far): call again from "
        f"{_clock(row['next_call_at'])}."
    )


AUDIT_RETRY = Rule(
    kind=ReminderKind.AUDIT_RETRY,
    owner=AUDIT_QUEUE,
    find=_find_audit_retry,
    due=lambda row: row["next_call_at"],
    why=_retry_why,
    gone=(
        Gone(
            _no_open_audit(("retry", "call_back"), _audit_call_occ),
            "Called again, or the audit closed.",
            by=_latest_auditor,
        ),
    ),
)


# --- flaked and disputed at audit ---------------------------------------------------
# Read from the deal's own audit flag (``Deal.audit_flag``, written by audits
# with the outcome): no import of audits. The occurrence is the flag's time,
# so a second flake or dispute of the same deal is a new reminder.


def _audit_flag_rule(flag: str, kind: str, owner: str, why: Callable[[dict], str]) -> Rule:
    suffix = "rep" if owner == REP else "manager"

    def find(window: Window, deal_ids: list[int] | None) -> QuerySet:
        deals = deals_for_scan(deal_ids).filter(
            audit_flag=flag, audit_flag_at__gt=window.since, audit_flag_at__lte=window.horizon
        )
        occ = Concat(
            Cast("audit_flag_at", CharField()), Value(f"/{suffix}"), output_field=CharField()
        )
        return without_reminder(deals.annotate(occ=occ), kind).values(
            "audit_flag_at", "occ", **DEAL_ROW
        )

    return Rule(
        kind=kind,
        owner=owner,
        find=find,
        due=lambda row: row["audit_flag_at"],
        why=why,
        gone=(
            Gone(
                lambda: ~Q(deal__audit_flag=flag),
                "Answered: wrapped up again, decided by the manager, or the deal moved on.",
            ),
        ),
    )


AUDIT_FLAKED = _audit_flag_rule(
    "flaked",
    ReminderKind.AUDIT_FLAKED,
    REP,
    lambda row: (
        f"Flaked at audit — re-close: three calls on {day_text(row['audit_flag_at'])}, "
        "no answer. Re-close with the customer, then wrap it up again."
    ),
)
AUDIT_DISPUTED_REP = _audit_flag_rule(
    "disputed",
    ReminderKind.AUDIT_DISPUTED,
    REP,
    lambda row: (
        f"Disputed at audit on {day_text(row['audit_flag_at'])}: the customer does not "
        "recognise the sale. Your manager decides: lost, or back to you to re-close."
    ),
)
AUDIT_DISPUTED_MANAGER = _audit_flag_rule(
    "disputed",
    ReminderKind.AUDIT_DISPUTED,
    MANAGER,
    lambda row: (
        f"Disputed at audit on {day_text(row['audit_flag_at'])}: decide — mark it lost, "
        "or send it back to the rep to re-close."
    ),
)
