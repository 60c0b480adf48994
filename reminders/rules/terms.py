"""A rep's change of frozen terms asked of their manager (``pipeline.TermsChange``):
the manager is reminded with the change and the rep's reason, and decides from
the reminder (templates/pipeline/_terms_change_decision.html); the rep hears
the answer. One reminder of each kind per request (occurrence ``t<id>``)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F

from pipeline.compiled import Compiled, InBatch
from pipeline.terms_history import TermsChange, TermsChangeState
from reminders.models import ReminderKind
from reminders.rules.base import MANAGER, REP, Facts, Gone, Known, Rule, Want, Window, person_text


@dataclass(frozen=True)
class TermsAsk:
    id: int
    state: str
    summary: str
    reason: str
    asked_at: datetime
    decided_at: datetime | None
    decided_by_id: int | None
    decision_note: str
    asked_by: str
    decided_by: str


_ASKS = Compiled(  # built once (``pipeline.compiled``): the batch's ids are its parameter
    lambda: TermsChange.objects.order_by()
    .filter(InBatch(F("deal_id"), "ids"), path="manager")
    .values_list(
        "deal_id", "id", "state", "changes", "reason", "asked_at", "decided_at",
        "decided_by_id", "decision_note", "asked_by__first_name", "asked_by__last_name",
        "asked_by__username", "decided_by__first_name", "decided_by__last_name",
        "decided_by__username",
    )
)  # fmt: skip


def load(facts: dict[int, Facts]) -> None:
    """The terms changes asked of a manager, for the batch's deals: one query."""
    for deal_id, pk, state, changes, *fields, af, al, au, df, dl, du in _ASKS.rows(ids=list(facts)):
        summary = TermsChange(changes=changes).summary  # the change in words, as everywhere
        asked_by = person_text(af, al, au, "Your rep")
        decided_by = person_text(df, dl, du, "Your manager")
        facts[deal_id].terms_asks.append(
            TermsAsk(pk, state, summary, *fields, asked_by, decided_by)
        )


def _asked(f: Facts, window: Window):
    for ask in f.terms_asks:
        if ask.state == TermsChangeState.ASKED:
            yield Want(
                f"t{ask.id}",
                ask.asked_at,
                f"{ask.asked_by} asks you to change the terms confirmed at audit: "
                f"{ask.summary}. Why: “{ask.reason}”",
            )


def _decided_as(state: str):
    def when(f: Facts, known: Known) -> bool:
        return any(a.state == state and f"t{a.id}" == known.occurrence for a in f.terms_asks)

    return when


def _decider(f: Facts) -> int | None:
    decided = [a for a in f.terms_asks if a.decided_by_id is not None]
    return max(decided, key=lambda a: a.decided_at).decided_by_id if decided else None


TERMS_CHANGE_ASKED = Rule(
    kind=ReminderKind.TERMS_CHANGE_ASKED,
    owner=MANAGER,
    wants=_asked,
    gone=(
        Gone(_decided_as(TermsChangeState.APPROVED), "Decided: approved.", by=_decider),
        Gone(_decided_as(TermsChangeState.DECLINED), "Decided: declined.", by=_decider),
    ),
    hovers=False,  # each request is a question of its own
)


def _decided(f: Facts, window: Window):
    for ask in f.terms_asks:
        if ask.decided_at is None:
            continue
        note = f": “{ask.decision_note}”" if ask.decision_note else ""
        if ask.state == TermsChangeState.APPROVED:
            why = f"{ask.decided_by} approved the change of terms ({ask.summary}){note}."
        else:
            why = (
                f"{ask.decided_by} declined the change of terms ({ask.summary}){note}: "
                "the terms stay as the customer confirmed them."
            )
        yield Want(f"t{ask.id}", ask.decided_at, why)


TERMS_CHANGE_DECIDED = Rule(
    kind=ReminderKind.TERMS_CHANGE_DECIDED,
    owner=REP,
    wants=_decided,
    ends_with_deal=False,
    hovers=False,
)
