"""A rep's change of frozen terms asked of their manager (``pipeline.TermsChange``):
the manager is reminded with the change and the rep's reason, and decides from
the reminder (templates/pipeline/_terms_change_decision.html); the rep hears
the answer. One reminder of each kind per request (occurrence ``t<id>``)."""

from dataclasses import dataclass
from datetime import datetime

from pipeline.terms_history import TermsChange, TermsChangeState
from reminders.models import ReminderKind
from reminders.rules.base import MANAGER, REP, Facts, Gone, Known, Rule, Want, Window


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


def _person(first, last, username, fallback: str) -> str:
    return f"{first or ''} {last or ''}".strip() or username or fallback


def load(facts: dict[int, Facts]) -> None:
    """The terms changes asked of a manager, for the batch's deals: one query."""
    rows = (
        TermsChange.objects.order_by()
        .filter(deal_id__in=list(facts), path="manager")
        .select_related("asked_by", "decided_by")
    )
    for change in rows:
        decider = change.decided_by
        facts[change.deal_id].terms_asks.append(
            TermsAsk(
                id=change.pk,
                state=change.state,
                summary=change.summary,
                reason=change.reason,
                asked_at=change.asked_at,
                decided_at=change.decided_at,
                decided_by_id=change.decided_by_id,
                decision_note=change.decision_note,
                asked_by=_person(
                    change.asked_by.first_name,
                    change.asked_by.last_name,
                    change.asked_by.username,
                    "Your rep",
                ),
                decided_by=str(decider) if decider else "Your manager",
            )
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
