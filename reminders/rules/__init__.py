"""The reminder kinds as data: one Rule per kind (DOMAIN.md, "Follow-up reminders").

Each rule says, in one place:

- ``wants``: given a deal's facts, the reminders they call for, each with its
  occurrence key, due time and the sentence the panel and the email show;
- ``wakes`` (if any): the moments its mind changes by time alone beyond the
  reminders it wants (an audit window closing), so the engine knows each
  deal's next moment and the minute's scan reads only the deals whose moment
  came (``reminders.schedule``);
- ``owner``: who gets it (the deal's rep, the rep's manager, or a role queue);
- ``gone``: how to tell that its cause is gone, and the words recorded when
  the engine resolves it.

The engine (``reminders.services``) applies every rule to a batch of deals
whose facts ``reminders.facts`` loaded in a few queries; nothing else decides
when a reminder exists. The rules read the apps below (pipeline, billing, receivables,
audits) directly; none of them knows reminders exist. They are split by the
app whose facts they read: ``pipeline.py``, ``audits.py``, ``billing.py``, ``receivables.py``
(``base.py``: what a rule is made of). A new kind is a ``ReminderKind`` and a
``Rule`` in the file of the app it reads, listed in ``RULES`` below (or
``billing_rules()``), and, if it reads new facts, a ``load`` in ``LOADERS``.
"""

from collections.abc import Callable, Iterable

from pipeline.stages import CLOSED_STAGES, Stage
from reminders.models import ReminderQueue
from reminders.rules import audits as audit_facts
from reminders.rules import billing as billing_facts
from reminders.rules import receivables as receivables_facts
from reminders.rules import terms as terms_facts
from reminders.rules.audits import (
    AUDIT_DISPUTED_MANAGER,
    AUDIT_DISPUTED_REP,
    AUDIT_DUE,
    AUDIT_FLAKED,
    AUDIT_OVERDUE,
    AUDIT_RETRY,
)
from reminders.rules.base import AUDIT_QUEUE, MANAGER, Facts, Gone, Rule
from reminders.rules.billing import billing_rules
from reminders.rules.pending import PENDING_RULES
from reminders.rules.pipeline import (
    CHECK_IN,
    DELIVERY_OVERDUE,
    DEPOSIT_MISSING,
    NEXT_STEP_DUE,
    SATISFACTION_CHECK,
    STALE_DEAL,
)
from reminders.rules.receivables import RECEIVABLES_RULES
from reminders.rules.terms import TERMS_CHANGE_ASKED, TERMS_CHANGE_DECIDED

RULES: tuple[Rule, ...] = (
    AUDIT_DUE,
    AUDIT_OVERDUE,
    AUDIT_RETRY,
    AUDIT_FLAKED,
    AUDIT_DISPUTED_REP,
    AUDIT_DISPUTED_MANAGER,
    CHECK_IN,
    DEPOSIT_MISSING,
    DELIVERY_OVERDUE,
    SATISFACTION_CHECK,
    NEXT_STEP_DUE,
    STALE_DEAL,
    TERMS_CHANGE_ASKED,
    TERMS_CHANGE_DECIDED,
)

# Each app's part of a deal's facts, beyond the deal's own columns and latest
# touch (``reminders.facts``): one or two queries each, for a whole batch.
LOADERS: tuple[Callable[[dict[int, Facts]], None], ...] = (
    audit_facts.load,
    billing_facts.load,
    receivables_facts.load,
    terms_facts.load,
)


def rules() -> Iterable[Rule]:
    return RULES + RECEIVABLES_RULES + PENDING_RULES + billing_rules()


def owner_of(rule: Rule, f: Facts) -> tuple[int | None, str]:
    """(owner user id, role queue) of a reminder a rule wants for a deal."""
    if rule.owner == AUDIT_QUEUE:
        return None, ReminderQueue.AUDIT
    if rule.owner == MANAGER:
        # A rep without a manager keeps their own escalations.
        return f.manager_id or f.rep_id, ReminderQueue.NONE
    return f.rep_id, ReminderQueue.NONE


# The stages at which a deal's end resolves a rule's reminders: closed (paid, lost
# or written off), or, for a rule whose reminders outlive payment, lost or written off.
_ENDING_STAGES = {True: CLOSED_STAGES, False: (Stage.LOST, Stage.WRITTEN_OFF)}

DEAL_CLOSED = Gone(
    lambda f, known: f.stage in _ENDING_STAGES[True],
    "The deal is closed: paid, lost or written off.",
)
DEAL_LOST = Gone(
    lambda f, known: f.stage in _ENDING_STAGES[False],
    "The deal is lost or written off.",
)


def gone_for(rule: Rule) -> tuple[Gone, ...]:
    """Every way a reminder of this rule's kind is resolved, the deal's end first."""
    return ((DEAL_CLOSED if rule.ends_with_deal else DEAL_LOST), *rule.gone)


def ended_for(rule: Rule, f: Facts) -> bool:
    """The deal's end resolves every reminder of this rule (``gone_for``'s first way):
    it wants none and has no moment, until a change to the deal reopens it."""
    return f.stage in _ENDING_STAGES[rule.ends_with_deal]
