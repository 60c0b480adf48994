"""The reminder kinds as data: one Rule per kind (DOMAIN.md, "Follow-up reminders").

Each rule says, in one place:

- ``find``: the deals whose facts call for a reminder of this kind that does
  not exist yet, each annotated with its ``occ`` (occurrence key). The query
  is limited to a window of time (``Window``) around now, so a scan that finds
  nothing new reads a few index ranges, not every deal;
- ``due``: when the reminder falls due;
- ``why``: the sentence the panel and the email show;
- ``owner``: who gets it (the deal's rep, the rep's manager, or a role queue);
- ``gone``: how to tell that its cause is gone, and the words recorded when
  the scan resolves it.

The scan (``reminders.services.reminders_scan``) applies every rule;
nothing else decides when a reminder exists. The rules read the apps below
(pipeline, billing, audits) directly; none of them knows reminders exist.
The rules are split by the app whose facts they read: ``pipeline.py``,
``audits.py``, ``billing.py`` (``base.py``: what a rule is made of). A new kind
is a ``ReminderKind`` and a ``Rule`` in the file of the app it reads, listed in
``RULES`` below (or ``billing_rules()``).
"""

from collections.abc import Iterable

from django.db.models import Q

from pipeline.stages import CLOSED_STAGES, Stage
from reminders.models import ReminderQueue
from reminders.rules.audits import (
    AUDIT_DISPUTED_MANAGER,
    AUDIT_DISPUTED_REP,
    AUDIT_DUE,
    AUDIT_FLAKED,
    AUDIT_OVERDUE,
    AUDIT_RETRY,
)
from reminders.rules.base import (
    AUDIT_QUEUE,
    MANAGER,
    Gone,
    Rule,
)
from reminders.rules.billing import (
    billing_rules,
)
from reminders.rules.m14b import m14b_rules  # the customer's answers (billing/links.py)
from reminders.rules.pipeline import (
    CHECK_IN,
    DELIVERY_OVERDUE,
    DEPOSIT_MISSING,
    NEXT_STEP_DUE,
    SATISFACTION_CHECK,
    STALE_DEAL,
)

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
)


def rules() -> Iterable[Rule]:
    return RULES + billing_rules() + m14b_rules()


def owner_of(rule: Rule, row: dict) -> tuple[int | None, str]:
    """(owner user id, role queue) of a reminder made from a rule's row."""
    if rule.owner == AUDIT_QUEUE:
        return None, ReminderQueue.AUDIT
    if rule.owner == MANAGER:
        # A rep without a manager keeps their own escalations.
        return row["manager_pk"] or row["rep_pk"], ReminderQueue.NONE
    return row["rep_pk"], ReminderQueue.NONE


DEAL_CLOSED = Gone(
    lambda: Q(deal__stage__in=sorted(CLOSED_STAGES)),
    "The deal is closed: paid, lost or written off.",
)
DEAL_LOST = Gone(
    lambda: Q(deal__stage__in=[Stage.LOST, Stage.WRITTEN_OFF]),
    "The deal is lost or written off.",
)


def gone_for(rule: Rule) -> tuple[Gone, ...]:
    """Every way a reminder of this rule's kind is resolved, the deal's end first."""
    return ((DEAL_CLOSED if rule.ends_with_deal else DEAL_LOST), *rule.gone)
