"""The rules of "Ask my manager" (issue 13), read from billing's ExceptionRequest.

Written in the current rule style for the integrator to port to the new engine.
A request (``billing.models.ExceptionRequest``) is a rep asking their manager to
lift a refusal of the terms policy for one deal: allow invoicing a slow payer
(``kind="allow_invoicing"``) or waive the deposit (``kind="waive_deposit"``).
Both reminders hang on the request's deal, with the occurrence ``x<request id>``
(one reminder of each kind per request, never twice: the unique
(deal, kind, occurrence) constraint).

EXCEPTION_ASKED — ``ReminderKind.EXCEPTION_ASKED`` ("Exception asked")
- owner: MANAGER — the manager of the rep who asked (``request.rep.manager``;
  the service refuses to ask without one; should the rep lose their manager
  later, the rep keeps it, as ``owner_of`` does for every MANAGER rule).
- created: when a request in state ``asked`` has ``asked_at`` in the scan's
  window (``since < asked_at <= horizon``); the asking service announces
  ``deal_changed`` on commit, so it is made at once by the deal's refresh.
- due: ``asked_at`` (at once).
- why: "<rep> asks you to allow invoicing this slow payer: “<reason>”" or
  "<rep> asks you to waive the deposit: “<reason>”" (the reason is masked text).
- gone: the request is no longer ``asked`` (approved or declined, from the
  reminder's own buttons or anywhere): resolution "Decided: approved." /
  "Decided: declined.", resolved by the manager who decided (``decided_by``).
  Also resolved, like every rule, when the deal is paid, lost or written off.
- the reminder panel shows Approve / Decline buttons on it
  (templates/billing/_exception_decision.html, included by the panel item);
  the request id is the occurrence without its "x".

EXCEPTION_DECIDED — ``ReminderKind.EXCEPTION_DECIDED`` ("Exception decided")
- owner: REP — the rep who asked (``request.rep``).
- created: when a request in state ``approved`` or ``declined`` has
  ``decided_at`` in the scan's window; the deciding service announces
  ``deal_changed`` on commit.
- due: ``decided_at`` (at once).
- why, approved invoicing: "<manager> approved invoicing this slow payer: the
  deal is invoiced as usual once its audit is confirmed."
  approved waiver: "<manager> waived the deposit: the deal can move on without one."
  declined (either): "<manager> declined to <allow invoicing this slow payer |
  waive the deposit>[: “<note>”]" + for invoicing: " — agree upfront or on file with
  the customer and change the payment option (Edit the deal)." / for a deposit:
  " — the deposit is still required: ask the customer for it."
- gone: never by a fact (the rep marks it done); ends when the deal is lost
  or written off, not when it is paid (``ends_with_deal=False``: the rep should
  still read the answer to their question).
"""

from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Concat

from billing.models import ExceptionKind, ExceptionRequest, RequestState
from reminders.models import ReminderKind
from reminders.rules.base import MANAGER, REP, Gone, Rule, Window, without_reminder


def _occ():
    return Concat(Value("x"), Cast("id", CharField()), output_field=CharField())


def _requests(deal_ids: list[int] | None) -> QuerySet:
    requests = ExceptionRequest.objects.order_by()
    return requests if deal_ids is None else requests.filter(deal_id__in=deal_ids)


ROW = {
    "deal_pk": F("deal_id"),
    "rep_pk": F("rep_id"),
    "manager_pk": F("rep__manager_id"),
    "tz": F("rep__time_zone"),
    "rep_first": F("rep__first_name"),
    "rep_last": F("rep__last_name"),
    "rep_username": F("rep__username"),
    "decider_first": F("decided_by__first_name"),
    "decider_last": F("decided_by__last_name"),
    "decider_username": F("decided_by__username"),
}


def _name(row: dict, who: str) -> str:
    full = f"{row[f'{who}_first'] or ''} {row[f'{who}_last'] or ''}".strip()
    return full or row[f"{who}_username"] or "Your manager"


def _what(kind: str) -> str:
    if kind == ExceptionKind.WAIVE_DEPOSIT:
        return "waive the deposit"
    return "allow invoicing this slow payer"


# --- exception asked (the manager's) --------------------------------------------------


def _find_asked(window: Window, deal_ids: list[int] | None) -> QuerySet:
    rows = (
        _requests(deal_ids)
        .filter(state=RequestState.ASKED, asked_at__gt=window.since, asked_at__lte=window.horizon)
        .annotate(occ=_occ())
    )
    return without_reminder(rows, ReminderKind.EXCEPTION_ASKED, "deal_id").values(
        "asked_at", "kind", "reason", "occ", **ROW
    )


def _decided(state: str):
    """The reminder's request (its occurrence) was decided this way."""

    def when():
        decided = (
            ExceptionRequest.objects.filter(deal_id=OuterRef("deal_id"), state=state)
            .annotate(occ=_occ())
            .filter(occ=OuterRef("occurrence"))
        )
        return Exists(decided)

    return when


def _decided_by():
    return Subquery(
        ExceptionRequest.objects.annotate(occ=_occ())
        .filter(deal_id=OuterRef("deal_id"), occ=OuterRef("occurrence"))
        .values("decided_by_id")[:1]
    )


EXCEPTION_ASKED = Rule(
    kind=ReminderKind.EXCEPTION_ASKED,
    owner=MANAGER,
    find=_find_asked,
    due=lambda row: row["asked_at"],
    why=lambda row: f"{_name(row, 'rep')} asks you to {_what(row['kind'])}: “{row['reason']}”",
    gone=(
        Gone(_decided(RequestState.APPROVED), "Decided: approved.", by=_decided_by),
        Gone(_decided(RequestState.DECLINED), "Decided: declined.", by=_decided_by),
    ),
)


# --- exception decided (the rep's) ----------------------------------------------------


def _find_decided(window: Window, deal_ids: list[int] | None) -> QuerySet:
    rows = (
        _requests(deal_ids)
        .filter(
            ~Q(state=RequestState.ASKED),
            decided_at__gt=window.since,
            decided_at__lte=window.horizon,
        )
        .annotate(occ=_occ())
    )
    return without_reminder(rows, ReminderKind.EXCEPTION_DECIDED, "deal_id").values(
        "decided_at", "kind", "state", "decision_note", "occ", **ROW
    )


def _decided_why(row: dict) -> str:
    manager = _name(row, "decider")
    if row["state"] == RequestState.APPROVED:
        if row["kind"] == ExceptionKind.WAIVE_DEPOSIT:
            return f"{manager} waived the deposit: the deal can move on without one."
        return (
            f"{manager} approved invoicing this slow payer: the deal is invoiced as usual "
            "once its audit is confirmed."
        )
    note = f": “{row['decision_note']}”" if row["decision_note"] else ""
    then = (
        " — the deposit is still required: ask the customer for it."
        if row["kind"] == ExceptionKind.WAIVE_DEPOSIT
        else " — agree upfront or on file with the customer and change the payment option "
        "(Edit the deal)."
    )
    return f"{manager} declined to {_what(row['kind'])}{note}{then}"


EXCEPTION_DECIDED = Rule(
    kind=ReminderKind.EXCEPTION_DECIDED,
    owner=REP,
    find=_find_decided,
    due=lambda row: row["decided_at"],
    why=_decided_why,
    ends_with_deal=False,
)
