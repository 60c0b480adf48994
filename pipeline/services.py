"""Business rules of the pipeline that write: promising, touching, moving deals."""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from pipeline import terms_freeze
from pipeline.access import can_manage, manages_rep
from pipeline.events import deal_changed_on_commit
from pipeline.history import history_record_update
from pipeline.models import Customer, Deal, StageEvent, Touch, User
from pipeline.sameness import standing_floor
from pipeline.selectors import customer_terms
from pipeline.stages import (
    BEFORE_AUDIT_STAGES,
    CLOSED_STAGES,
    REP,
    SYSTEM,
    AuditFlag,
    IllegalMove,
    LostReason,
    Stage,
    check_move,
)
from pipeline.terms import terms_for
from pipeline.terms_history import TermsChange, TermsChangeState, TermsPath


class StaleDeal(Exception):
    """The deal changed since the user loaded it; nothing was written."""

    def __init__(self, deal: Deal):
        self.deal = deal
        super().__init__(
            f"Someone else changed this deal while you were looking at it: it is now in "
            f"{deal.get_stage_display()}. Nothing was saved; check it and try again."
        )


def role_for_moves(user: User | None) -> str:
    """Which column of the transitions table a user's moves are checked against."""
    if user is None:
        return SYSTEM
    if can_manage(user):
        return "manager"
    return REP


class RepInactive(IllegalMove):
    """Work in the name of someone who left is refused (their successor logs it)."""


def lock_active_rep(rep: User) -> None:
    """Lock the rep's row for this transaction and refuse a rep who left.

    ``pipeline.team.user_deactivate`` locks the same row: a deal or customer
    logged at the instant the rep is deactivated is either written first (and
    handed over with the rest) or refused here, never left with the leaver.
    """
    active = (
        User.objects.select_for_update(no_key=True)
        .filter(pk=rep.pk)
        .values_list("is_active", flat=True)
        .first()
    )
    if not active:
        raise RepInactive(f"{rep} has left: nothing new can be logged in their name.")


@transaction.atomic
def customer_add(
    *,
    owner: User,
    name: str,
    phone: str,
    company: str = "",
    email: str = "",
    billing_contact: str = "",
    accounting_cutoff_day: int | None = None,
    plans_notes: str = "",
    technology_notes: str = "",
    billing_email: str = "",
    chase_by_email: bool = True,
) -> Customer:
    """A new customer of ``owner``'s, standing New until billing learns their history.

    Whether it duplicates one is asked before (the forms show
    ``pipeline.sameness.customer_matches`` and let the rep pick it). Added
    anyway, a customer matching an older one starts no better than that one's
    standing, until a manager says they are different people (issue 20).
    ``RepInactive`` for an owner who left (``lock_active_rep``).
    """
    lock_active_rep(owner)
    customer = Customer.objects.create(
        owner=owner,
        name=name,
        phone=phone,
        company=company,
        email=email,
        billing_contact=billing_contact,
        accounting_cutoff_day=accounting_cutoff_day,
        plans_notes=plans_notes,
        technology_notes=technology_notes,
        billing_email=billing_email,
        chase_by_email=chase_by_email,
    )
    floor = standing_floor(customer)
    if floor is not None:
        customer.standing, customer.standing_reason = floor
        customer.save(update_fields=["standing", "standing_reason"])
    return customer


@transaction.atomic
def customer_save(*, customer: Customer, actor: User, changed: Iterable[str] = ()) -> Customer:
    """Save an edited customer (``changed``: the fields edited), and announce
    ``deal_changed`` for each of their open deals: their cut-off day, billing
    address or "do not chase" are facts the apps above read for those deals (a
    reminder waiting on a corrected address is resolved now, not at the next
    sweep). A new address is worth trying again: it no longer counts as bouncing.
    """
    if {"email", "billing_email"} & set(changed):
        customer.billing_email_bounced_at = None
    customer.save()
    open_deals = customer.deals.exclude(stage__in=sorted(CLOSED_STAGES)).values_list(
        "pk", flat=True
    )
    for deal_id in open_deals:
        deal_changed_on_commit(deal_id=deal_id, actor_id=actor.pk)
    return customer


class TermsRefused(IllegalMove):
    """The customer's standing does not allow this payment option (``terms.summary``
    says why); ``needs_manager``: an exception from the rep's manager could lift it."""

    def __init__(self, message: str, *, needs_manager: bool):
        super().__init__(message)
        self.needs_manager = needs_manager


def promise_terms(*, customer: Customer, payment_option: str, invoicing_asked: bool = False):
    """The terms a deal is promised (or its option agreed again) on, or ``TermsRefused``.

    The payment option must be one the customer's standing allows (DOMAIN.md,
    terms policy). ``invoicing_asked``: the rep asked their manager to allow
    invoicing; the deal is logged on the terms such an exception gives. The one
    check: ``deal_promise``, ``deal_update`` and the deal forms ask it.
    """
    terms = customer_terms(customer)
    needs_manager = terms.needs_exception_for(payment_option)
    if invoicing_asked and needs_manager:
        terms = terms_for(terms.standing, terms.reason, invoicing_exception="asked")
    if not terms.allows(payment_option):
        raise TermsRefused(terms.summary, needs_manager=needs_manager)
    return terms


@transaction.atomic
def deal_promise(
    *,
    rep: User,
    customer: Customer,
    title: str,
    amount: Decimal,
    payment_option: str,
    expected_delivery_date: date,
    next_step: str,
    next_step_date: date,
    notes: str = "",
    promised_at: datetime | None = None,
    invoicing_asked: bool = False,
) -> Deal:
    """Log a customer's verbal promise as a deal in Promised.

    The customer's standing decides the terms (DOMAIN.md, terms policy): the
    payment option must be one the standing allows, and whether a deposit is
    required is fixed now, when the customer agrees to the terms.

    ``invoicing_asked``: the rep asked their manager to allow invoicing a slow
    payer ("Ask my manager", billing's ExceptionRequest, its only caller). The
    deal is logged on the terms such an exception gives (an invoice, with a
    deposit required); billing does not invoice it unless the manager approves.

    ``RepInactive`` for a rep who left: the rep's row is locked first, so the
    deal cannot interleave with their handover (``lock_active_rep``).
    """
    lock_active_rep(rep)
    terms = promise_terms(
        customer=customer, payment_option=payment_option, invoicing_asked=invoicing_asked
    )
    deal = Deal.objects.create(
        rep=rep,
        sold_by=rep,
        customer=customer,
        title=title,
        amount=amount,
        payment_option=payment_option,
        deposit_required=terms.deposit_required(payment_option),
        expected_delivery_date=expected_delivery_date,
        next_step=next_step,
        next_step_date=next_step_date,
        notes=notes,
        promised_at=promised_at or timezone.now(),
        stage_changed_at=promised_at or timezone.now(),
    )
    StageEvent.objects.create(
        deal=deal,
        from_stage="",
        to_stage=Stage.PROMISED,
        actor=rep,
        at=deal.promised_at,
        reason="Customer said yes.",
    )
    deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    return deal


@transaction.atomic
def deal_move(
    *,
    deal_id: int,
    to_stage: str,
    actor: User | None,
    reason: str = "",
    lost_reason: str = "",
    expected_version: int | None = None,
    at: datetime | None = None,
    as_role: str | None = None,
) -> Deal:
    """Move a deal to another stage through the one transitions table.

    Raises IllegalMove for a move the table or the terms refuse, StaleDeal
    when ``expected_version`` is given and the deal changed meanwhile. The
    stage event is written in the same transaction; the row lock (and the
    version compare-and-set, for databases without row locks) makes two
    people racing on one deal end with exactly one move. ``at`` backdates a
    move to when it happened (demo data, imports); it defaults to now.
    ``as_role`` checks the move against another column of the transitions
    table than the actor's own: a fact recorded by a person (an auditor's
    confirmed call, a manager clearing a check) moves the deal as "system",
    with that person named on the stage event.

    A deal marked Delivered whose cleared money already covers its amount
    moves straight on to Payment cleared, as the system, in the same
    transaction (``Deal.cleared_money_move``).
    """
    deal = Deal.objects.select_for_update().get(pk=deal_id)
    if expected_version is not None and deal.version != expected_version:
        raise StaleDeal(deal)
    check_move(deal, to_stage, as_role or role_for_moves(actor))
    if to_stage == Stage.LOST:
        if lost_reason not in LostReason.values:
            raise IllegalMove("Say why the deal was lost.")
    else:
        lost_reason = ""
    if to_stage == Stage.WRITTEN_OFF and not reason.strip():
        raise IllegalMove("Say why the money is written off, in the note.")
    now = at or timezone.now()
    _record_move(deal, to_stage, actor=actor, at=now, reason=reason, lost_reason=lost_reason)
    follow = deal.cleared_money_move() if to_stage == Stage.DELIVERED else None
    if follow is not None:
        follow_stage, follow_reason = follow
        check_move(deal, follow_stage, SYSTEM)
        _record_move(deal, follow_stage, actor=actor, at=now, reason=follow_reason)
    deal_changed_on_commit(deal_id=deal.pk, actor_id=actor.pk if actor else None)
    deal.refresh_from_db()
    return deal


def _record_move(
    deal: Deal, to_stage: str, *, actor: User | None, at: datetime, reason: str, lost_reason=""
) -> None:
    """Write one checked move of a locked deal and its stage event; ``deal`` follows in memory.

    The version compare-and-set refuses the move if the deal changed since it
    was read (for databases without row locks).
    """
    changes = {
        "stage": to_stage,
        "stage_changed_at": at,
        "lost_reason": lost_reason,
        "version": deal.version + 1,
        "updated_at": timezone.now(),
    }
    if to_stage == Stage.DELIVERED and deal.delivered_at is None:
        changes["delivered_at"] = at
    if to_stage not in BEFORE_AUDIT_STAGES:
        # Past the audit, or lost: a flake has nothing left to ask of the rep.
        changes["audit_flag"] = AuditFlag.NONE
        changes["audit_flag_at"] = None
    updated = Deal.objects.filter(pk=deal.pk, version=deal.version).update(**changes)
    if not updated:
        raise StaleDeal(Deal.objects.get(pk=deal.pk))
    history_record_update(Deal, [deal.pk])
    StageEvent.objects.create(
        deal=deal, from_stage=deal.stage, to_stage=to_stage, actor=actor, at=at, reason=reason
    )
    for name, value in changes.items():
        setattr(deal, name, value)


@transaction.atomic
def deal_update(
    *,
    deal_id: int,
    actor: User,
    expected_version: int,
    terms_path: str = "",
    reason: str = "",
    **fields,
) -> Deal:
    """Save edits to a deal, refusing them if the deal changed meanwhile.

    Its terms (``terms_freeze.TERMS_FIELDS``) change freely until they freeze
    (``terms_freeze.terms_frozen_by``: the audit confirmed them, or an upfront
    deal is paid). Frozen, the rep chooses ``terms_path``: ``back_to_audit``
    (saved, and the deal returns to the audit path for a new wrap-up) or
    ``manager`` (a ``TermsChange`` request, applied when the manager approves;
    the edits that are not terms are saved now). Without a choice,
    ``TermsFrozen``. Every change of terms is a ``TermsChange`` row on the
    timeline, with ``reason``.
    """
    deal = Deal.objects.select_for_update().get(pk=deal_id)
    if deal.version != expected_version:
        raise StaleDeal(deal)
    if deal.is_closed:
        raise IllegalMove(f"This deal is {deal.get_stage_display().lower()}: it can't be edited.")
    diff = terms_freeze.terms_diff(deal, fields)
    frozen_by = terms_freeze.terms_frozen_by(deal) if diff else ""
    reason = reason.strip()
    path = TermsPath.FREE
    if frozen_by:
        path = _frozen_terms_path(deal, actor, terms_path, reason, frozen_by)
    if path == TermsPath.MANAGER:
        if TermsChange.objects.filter(deal=deal, state=TermsChangeState.ASKED).exists():
            raise IllegalMove("You asked your manager already: they have not decided yet.")
        for name in diff:
            fields.pop(name)
    else:
        fields.update(_terms_checked(deal, fields))
    for name, value in fields.items():
        setattr(deal, name, value)
    deal.version = F("version") + 1
    deal.save()
    deal.refresh_from_db()
    if diff:
        TermsChange.objects.create(
            deal=deal,
            path=path,
            state=TermsChangeState.ASKED if path == TermsPath.MANAGER else TermsChangeState.APPLIED,
            changes=diff,
            reason=reason,
            asked_by=actor,
        )
    if path == TermsPath.BACK_TO_AUDIT:
        _record_move(
            deal,
            terms_freeze.back_to_audit_stage(deal),
            actor=actor,
            at=timezone.now(),
            reason=f"Terms changed after the audit, back to audit: {reason}",
        )
    deal_changed_on_commit(deal_id=deal.pk, actor_id=actor.pk)
    return deal


def _frozen_terms_path(deal: Deal, actor: User, chosen: str, reason: str, frozen_by: str) -> str:
    """The rep's way of changing frozen terms, checked; ``TermsFrozen`` without one."""
    if chosen not in (terms_freeze.BACK_TO_AUDIT, terms_freeze.ASK_MANAGER):
        raise terms_freeze.TermsFrozen(
            f"The terms are frozen: {frozen_by}. Choose how to change them: "
            "send the deal back to audit, or ask your manager."
        )
    if chosen == terms_freeze.BACK_TO_AUDIT and not terms_freeze.may_send_back_to_audit(deal):
        raise IllegalMove(
            f"The deal is in {deal.get_stage_display()}: it can't go back to audit. "
            "Ask your manager."
        )
    if not reason:
        raise terms_freeze.TermsReasonMissing(
            "Say why the terms change: it goes on the deal's timeline."
        )
    if chosen == terms_freeze.ASK_MANAGER and actor.manager_id is None and not can_manage(actor):
        raise IllegalMove(
            "You have no manager in Cleared to ask: a manager must add you to their team."
        )
    return TermsPath(chosen)


def _terms_checked(deal: Deal, fields: dict) -> dict:
    """Refuse terms that cannot apply to ``deal`` now; the columns they set besides."""
    extra = {}
    option = fields.get("payment_option", deal.payment_option)
    if option != deal.payment_option:
        # Agreed again with the customer (a manager declined invoicing, say):
        # only before anything is at stake, on terms the standing allows.
        if deal.stage != Stage.PROMISED:
            raise IllegalMove(
                f"The deal is in {deal.get_stage_display()}: its payment option is settled."
            )
        terms = promise_terms(customer=deal.customer, payment_option=option)
        extra["deposit_required"] = terms.deposit_required(option)
    if "amount" in fields:
        terms_freeze.check_amount(deal, fields["amount"])
    return extra


def terms_change_by_manager(
    *, deal: Deal, manager: User, label: str, before: str, after: str, reason: str
) -> TermsChange:
    """A frozen term the rep's manager changes themself (a payment plan after the
    audit, say): on the deal's timeline as asked and approved by them, with why.

    Called inside the caller's transaction, with the deal locked. A rep, or a manager
    of another team, is refused (``TermsFrozen``); so is a change without a reason.
    """
    frozen_by = terms_freeze.terms_frozen_by(deal)
    if not manages_rep(manager, deal.rep):
        raise terms_freeze.TermsFrozen(
            f"The terms are frozen ({frozen_by}): {label.lower()} is your manager's to set."
        )
    if not reason.strip():
        raise terms_freeze.TermsReasonMissing(
            "Say why the terms change: it goes on the deal's timeline."
        )
    now = timezone.now()
    return TermsChange.objects.create(
        deal=deal,
        path=TermsPath.MANAGER,
        state=TermsChangeState.APPROVED,
        changes={
            label.lower().replace(" ", "_"): {
                "label": label,
                "from": before,
                "to": after,
                "from_text": before,
                "to_text": after,
            }
        },
        reason=reason.strip(),
        asked_by=manager,
        decided_by=manager,
        decided_at=now,
        decision_note=f"Set by {manager} after the audit froze the terms.",
    )


@transaction.atomic
def terms_change_decide(
    *, change_id: int, manager: User, approve: bool, note: str = ""
) -> TermsChange:
    """The rep's own manager approves or declines a change of frozen terms, once.

    The decision is a compare-and-set (``UPDATE … WHERE state = 'asked'``): of
    two clicks, the first decides and the second gets ``TermsChangeDecided``.
    Approved, the change is applied in the same transaction, if the terms are
    still those it was asked from and the checks of every path pass (a live
    invoice, money received); otherwise ``IllegalMove`` and nothing is decided.
    ``PermissionDenied`` for anyone but the deal's rep's manager.
    """
    change = TermsChange.objects.select_related("deal__rep").get(pk=change_id)
    if not manages_rep(manager, change.deal.rep):
        raise PermissionDenied(f"Only {change.deal.rep}'s manager can decide this.")
    now = timezone.now()
    decided = TermsChange.objects.filter(pk=change.pk, state=TermsChangeState.ASKED).update(
        state=TermsChangeState.APPROVED if approve else TermsChangeState.DECLINED,
        decided_by=manager,
        decided_at=now,
        decision_note=note.strip()[:300],
    )
    if not decided:
        change.refresh_from_db()
        raise terms_freeze.TermsChangeDecided(
            f"{change.decided_by} {change.get_state_display().lower()} this already, "
            f"{timezone.localtime(change.decided_at):%-d %b, %H:%M}."
        )
    if approve:
        deal = Deal.objects.select_for_update().get(pk=change.deal_id)
        if deal.is_closed:
            raise IllegalMove(f"This deal is {deal.get_stage_display().lower()}: it can't change.")
        if not terms_freeze.diff_still_applies(deal, change.changes):
            raise IllegalMove(
                "The deal's terms changed since this was asked: the rep must ask again."
            )
        values = terms_freeze.diff_values(change.changes)
        values.update(_terms_checked(deal, values))
        Deal.objects.filter(pk=deal.pk).update(**values, version=F("version") + 1, updated_at=now)
    deal_changed_on_commit(deal_id=change.deal_id, actor_id=manager.pk)
    change.refresh_from_db()
    return change


@transaction.atomic
def touch_record(
    *,
    deal: Deal,
    author: User,
    kind: str,
    discussed: str,
    agreed_to: str,
    next_step: str,
    next_step_date: date,
    happened_at=None,
) -> Touch:
    """Record a contact with the customer; its next step becomes the deal's next step.

    Always close on something, always leave a reason to call back (seeds 002,
    003): both are required by the model.
    """
    touch = Touch.objects.create(
        deal=deal,
        author=author,
        kind=kind,
        discussed=discussed,
        agreed_to=agreed_to,
        next_step=next_step,
        next_step_date=next_step_date,
        happened_at=happened_at or timezone.now(),
    )
    Deal.objects.filter(pk=deal.pk).update(
        next_step=touch.next_step,
        next_step_date=next_step_date,
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    history_record_update(Deal, [deal.pk])
    deal_changed_on_commit(deal_id=deal.pk, actor_id=author.pk)
    return touch
