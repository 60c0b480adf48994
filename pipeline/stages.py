"""The deal's journey as data: stages and the one table of allowed moves.

DOMAIN.md, "The deal's journey". Every stage change goes through
``pipeline.services.deal_move``, which asks :func:`check_move` first.
"""

from dataclasses import dataclass

from django.db import models


class Stage(models.TextChoices):
    PROMISED = "promised", "Promised"
    DEPOSIT = "deposit", "Deposit"
    AUDIT_CONFIRMED = "audit_confirmed", "Audit confirmed"
    DELIVERED = "delivered", "Delivered"
    PAYMENT_CLEARED = "payment_cleared", "Payment cleared"
    LOST = "lost", "Lost"
    WRITTEN_OFF = "written_off", "Written off"


HAPPY_PATH: tuple[Stage, ...] = (
    Stage.PROMISED,
    Stage.DEPOSIT,
    Stage.AUDIT_CONFIRMED,
    Stage.DELIVERED,
    Stage.PAYMENT_CLEARED,
)
CLOSED_STAGES = frozenset({Stage.PAYMENT_CLEARED, Stage.LOST, Stage.WRITTEN_OFF})
# Money not cleared and the deal still alive: what the Not paid yet board shows.
NOT_PAID_STAGES = (Stage.PROMISED, Stage.DEPOSIT, Stage.AUDIT_CONFIRMED, Stage.DELIVERED)


class AuditFlag(models.TextChoices):
    """What the audit call left on a deal that the people around it must act on.

    Set by ``audits.services`` in the transaction that records the outcome,
    cleared by what answers it (a new wrap-up, the manager's decision, the
    deal leaving Promised/Deposit). A disputed deal is off the billing path and
    cannot move until its manager decides (DOMAIN.md, "The audit").
    """

    NONE = "", "—"
    FLAKED = "flaked", "Flaked at audit — re-close"
    DISPUTED = "disputed", "Disputed at audit — awaiting the manager"


# The stages a deal with an audit flag can be in: the ones before the audit.
BEFORE_AUDIT_STAGES = (Stage.PROMISED, Stage.DEPOSIT)


class LostReason(models.TextChoices):
    COMPETITOR = "competitor", "Competitor one-upped us"
    FLAKED_AT_AUDIT = "flaked_at_audit", "Flaked at audit"
    DISPUTED_AT_AUDIT = "disputed_at_audit", "Disputed at audit"
    DECLINED_AT_AUDIT = "declined_at_audit", "Declined at audit"
    CREDIT_FAILED = "credit_failed", "Credit failed"
    COULD_NOT_DELIVER = "could_not_deliver", "Could not deliver"
    BUYERS_REMORSE = "buyers_remorse", "Buyer's remorse"
    OTHER = "other", "Other"


# Who may make a move: a person in a role, or "system" (a fact recorded by
# billing or audits, e.g. a payment clearing).
REP, MANAGER, SYSTEM = "rep", "manager", "system"


@dataclass(frozen=True)
class Transition:
    source: Stage
    target: Stage
    by: frozenset[str]
    label: str


def _t(source: Stage, target: Stage, by: set[str], label: str) -> Transition:
    return Transition(source, target, frozenset(by), label)


TRANSITIONS: tuple[Transition, ...] = (
    # Deposit and Payment cleared follow recorded money (billing.services.deal_sync_stage):
    # a rep records the deposit or the card on file, nobody clicks "it's in".
    _t(Stage.PROMISED, Stage.DEPOSIT, {SYSTEM}, "Deposit is in"),
    # Only an auditor's confirmed call (audits.services) moves a deal into
    # Audit confirmed, as the system: nobody ticks it by hand.
    _t(Stage.PROMISED, Stage.AUDIT_CONFIRMED, {SYSTEM}, "Audit confirmed"),
    _t(Stage.PROMISED, Stage.DELIVERED, {REP, MANAGER, SYSTEM}, "Mark delivered"),
    _t(Stage.PROMISED, Stage.LOST, {REP, MANAGER, SYSTEM}, "Mark lost"),
    _t(Stage.DEPOSIT, Stage.AUDIT_CONFIRMED, {SYSTEM}, "Audit confirmed"),
    _t(Stage.DEPOSIT, Stage.DELIVERED, {REP, MANAGER, SYSTEM}, "Mark delivered"),
    _t(Stage.DEPOSIT, Stage.LOST, {REP, MANAGER, SYSTEM}, "Mark lost"),
    _t(Stage.AUDIT_CONFIRMED, Stage.DELIVERED, {REP, MANAGER, SYSTEM}, "Mark delivered"),
    _t(Stage.AUDIT_CONFIRMED, Stage.LOST, {REP, MANAGER, SYSTEM}, "Mark lost"),
    _t(Stage.DELIVERED, Stage.PAYMENT_CLEARED, {SYSTEM}, "Payment cleared"),
    _t(Stage.DELIVERED, Stage.WRITTEN_OFF, {MANAGER}, "Write off"),
    _t(Stage.DELIVERED, Stage.LOST, {REP, MANAGER, SYSTEM}, "Mark lost"),
    # A payment that bounces takes the deal back out of Payment cleared.
    _t(Stage.PAYMENT_CLEARED, Stage.DELIVERED, {SYSTEM}, "Payment bounced"),
)
_BY_PAIR = {(t.source, t.target): t for t in TRANSITIONS}


class IllegalMove(Exception):
    """A stage move the rules refuse; the message is shown to the user."""


def find_transition(source: str, target: str) -> Transition | None:
    return _BY_PAIR.get((Stage(source), Stage(target)))


def check_move(deal, target: str, actor_role: str) -> Transition:
    """Return the transition for moving ``deal`` to ``target``, or raise IllegalMove.

    ``deal`` needs ``stage`` and ``needs_stage(stage)`` (see ``Deal``); a stage
    the deal needs can never be jumped over, and a stage it does not need can
    never be entered ("skipped, never faked").
    """
    try:
        target = Stage(target)
    except ValueError:
        raise IllegalMove(f"“{target}” is not a stage.") from None
    current = Stage(deal.stage)
    if getattr(deal, "audit_flag", "") == AuditFlag.DISPUTED:
        raise IllegalMove(
            "The customer disputed this sale at audit: nothing moves until the manager "
            "decides (mark it lost, or send it back to the rep to re-close)."
        )
    if target == current:
        raise IllegalMove(f"The deal is already in {current.label}.")
    if current in (Stage.LOST, Stage.WRITTEN_OFF):
        raise IllegalMove(f"This deal is {current.label.lower()}: it is closed and cannot move.")
    transition = find_transition(current, target)
    if transition is None:
        raise IllegalMove(f"A deal cannot go from {current.label} to {target.label}.")
    if actor_role not in transition.by:
        if transition.by == {SYSTEM}:
            raise IllegalMove(f"{target.label} is set by Cleared from the facts, not by hand.")
        raise IllegalMove(f"Only a manager can move a deal to {target.label}.")
    if target in HAPPY_PATH and current in HAPPY_PATH:
        if not deal.needs_stage(target):
            raise IllegalMove(deal.why_stage_not_needed(target))
        start, end = HAPPY_PATH.index(current), HAPPY_PATH.index(target)
        for skipped in HAPPY_PATH[start + 1 : end]:
            if deal.needs_stage(skipped):
                raise IllegalMove(
                    f"This deal must reach {skipped.label} before {target.label}: "
                    f"{deal.why_stage_needed(skipped)}"
                )
    return transition


def next_moves(deal, actor_role: str) -> list[Transition]:
    """The moves ``actor_role`` may make on ``deal`` now, for buttons."""
    moves = []
    for transition in TRANSITIONS:
        if transition.source != deal.stage or actor_role not in transition.by:
            continue
        try:
            check_move(deal, transition.target, actor_role)
        except IllegalMove:
            continue
        moves.append(transition)
    return moves
