"""Terms exceptions: a manager's waiver and allow-invoicing, and a rep's "Ask my
manager" with its decision."""

from datetime import date, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import (
    ExceptionKind,
    ExceptionRequest,
    RequestState,
    TermsException,
)
from billing.services.errors import (
    AlreadyDecided,
    BillingError,
    NotAllowed,
    _deal_changed,
    _lock_deal,
    _refuse_closed,
    _require_manager,
)
from billing.services.standing import customer_copy_invoicing_exception
from pipeline.access import manages_rep
from pipeline.events import deal_changed_on_commit
from pipeline.history import history_record_update
from pipeline.models import Customer, Deal, User
from pipeline.selectors import customer_terms
from pipeline.services import deal_promise
from pipeline.stages import Stage
from pipeline.terms import PaymentOption

# --- Terms exceptions -------------------------------------------


def _check_deposit_waivable(deal: Deal) -> None:
    """A deposit can be waived (or asked to be) only while one is required, the deal
    is still Promised and it is not paid upfront; BillingError says why not."""
    if not deal.deposit_required:
        raise BillingError("This deal needs no deposit: there is nothing to waive.")
    if deal.stage != Stage.PROMISED:
        raise BillingError(
            f"The deal is in {deal.get_stage_display()}: the deposit question is settled."
        )
    if deal.payment_option == PaymentOption.UPFRONT:
        raise BillingError(
            "An upfront deal is paid in full at the close: there is no deposit to waive."
        )


@transaction.atomic
def deposit_waive(
    *, deal_id: int, manager: User, reason: str, at: datetime | None = None
) -> TermsException:
    """A manager waives a deal's required deposit, with a reason (DOMAIN.md, Deposit).

    Sets ``Deal.deposit_required`` to False under the deal's lock and bumps
    its version, so the stage table no longer asks for Deposit; the
    exception row is the record of who, when and why.
    """
    _require_manager(manager, "waive a deposit")
    if not reason.strip():
        raise BillingError("Say why the deposit is waived.", field="reason")
    deal = _lock_deal(deal_id)
    _check_deposit_waivable(deal)
    Deal.objects.filter(pk=deal.pk).update(
        deposit_required=False, version=F("version") + 1, updated_at=timezone.now()
    )
    history_record_update(Deal, [deal.pk])
    # No deposit required any more: "deposit missing" is resolved at once.
    deal_changed_on_commit(deal_id=deal.pk, actor_id=manager.pk)
    return TermsException.objects.create(
        kind=ExceptionKind.WAIVE_DEPOSIT,
        customer=deal.customer,
        deal=deal,
        reason=reason.strip(),
        granted_by=manager,
        granted_at=at or timezone.now(),
    )


@transaction.atomic
def invoicing_allow(
    *,
    customer_id: int,
    manager: User,
    reason: str,
    valid_until: date | None = None,
    at: datetime | None = None,
) -> TermsException:
    """A manager lets a slow payer be invoiced (DOMAIN.md, Terms policy), with a reason."""
    _require_manager(manager, "allow invoicing for a slow payer")
    if not reason.strip():
        raise BillingError("Say why this customer may be invoiced.", field="reason")
    if valid_until is not None and valid_until < timezone.localdate():
        raise BillingError("The exception can't end in the past.", field="valid_until")
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    exception = TermsException.objects.create(
        kind=ExceptionKind.ALLOW_INVOICING,
        customer=customer,
        reason=reason.strip(),
        valid_until=valid_until,
        granted_by=manager,
        granted_at=at or timezone.now(),
    )
    # The pipeline reads the terms from the customer row: copy it there now.
    customer_copy_invoicing_exception(customer_id=customer.pk)
    for deal_id in customer.deals.open().values_list("pk", flat=True):
        deal_changed_on_commit(deal_id=deal_id, actor_id=manager.pk)
    return exception


def _check_can_ask(rep: User, reason: str) -> str:
    if not reason.strip():
        raise BillingError("Say why: your manager sees this with the request.", field="ask_reason")
    if rep.manager_id is None:
        raise BillingError(
            "You have no manager in Cleared to ask: a manager must add you to their team.",
            field="ask_reason",
        )
    return reason.strip()


@transaction.atomic
def invoicing_ask(
    *, rep: User, reason: str, customer: Customer, payment_option: str, **deal_fields
) -> ExceptionRequest:
    """Log the deal and ask the rep's manager to allow invoicing this slow payer.

    The refusal of the terms policy (DOMAIN.md: a slow payer's invoicing
    "needs a manager's exception") is not a dead end: the deal is logged at once
    as an invoice deal with a deposit required (nothing is retyped), and it is
    not invoiced until the manager approves (``invoicing_request_refusal``).
    The manager is reminded with the rep's reason (the "exception asked" reminder).
    """
    reason = _check_can_ask(rep, reason)
    if payment_option != PaymentOption.INVOICE:
        raise BillingError("Only invoicing a slow payer is asked of a manager here.")
    from_terms = customer_terms(customer)
    if not from_terms.needs_exception_for(PaymentOption.INVOICE):
        raise BillingError(
            "This customer may be invoiced without an exception: log the deal as usual.",
            field="ask_reason",
        )
    deal = deal_promise(
        rep=rep,
        customer=customer,
        payment_option=PaymentOption.INVOICE,
        invoicing_asked=True,
        **deal_fields,
    )
    return ExceptionRequest.objects.create(
        kind=ExceptionKind.ALLOW_INVOICING, deal=deal, rep=rep, reason=reason
    )


@transaction.atomic
def deposit_waiver_ask(*, deal_id: int, rep: User, reason: str) -> ExceptionRequest:
    """The rep asks their manager to waive this deal's deposit, with a reason.

    Asked only where a manager could waive it (``deposit_waive``'s rules); one
    open request per deal (the database holds it).
    """
    reason = _check_can_ask(rep, reason)
    deal = _lock_deal(deal_id)
    _check_deposit_waivable(deal)
    if ExceptionRequest.objects.filter(
        deal=deal, kind=ExceptionKind.WAIVE_DEPOSIT, state=RequestState.ASKED
    ).exists():
        raise BillingError("You asked already: your manager has not decided yet.")
    ask = ExceptionRequest.objects.create(
        kind=ExceptionKind.WAIVE_DEPOSIT, deal=deal, rep=rep, reason=reason
    )
    _deal_changed(deal.pk, rep)
    return ask


@transaction.atomic
def exception_request_decide(
    *, request_id: int, manager: User, approve: bool, note: str = ""
) -> ExceptionRequest:
    """The rep's own manager approves or declines a request, once.

    The decision is a compare-and-set (``UPDATE … WHERE state = 'asked'``):
    of two clicks, or two managers, the first decides and the second gets
    ``AlreadyDecided``. Approved, the exception is applied in the same
    transaction: the deposit waived (``deposit_waive``), or invoicing allowed
    for this deal (a ``TermsException`` naming it). A refusal by those rules
    (the deal moved on meanwhile) rolls the decision back. The rep hears of it
    through the "exception decided" reminder.
    """
    ask = ExceptionRequest.objects.select_related("rep", "deal").get(pk=request_id)
    if not manages_rep(manager, ask.rep):
        raise NotAllowed(f"Only {ask.rep}'s manager can decide this.")
    now = timezone.now()
    decided = ExceptionRequest.objects.filter(pk=ask.pk, state=RequestState.ASKED).update(
        state=RequestState.APPROVED if approve else RequestState.DECLINED,
        decided_by=manager,
        decided_at=now,
        decision_note=note.strip()[:300],
    )
    if not decided:
        ask.refresh_from_db()
        raise AlreadyDecided(
            f"{ask.decided_by} {ask.get_state_display().lower()} this already, "
            f"{timezone.localtime(ask.decided_at):%-d %b, %H:%M}."
        )
    reason = f"Asked by {ask.rep}: {ask.reason}"
    if note.strip():
        reason += f" — {manager}: {note.strip()}"
    exception = None
    if approve and ask.kind == ExceptionKind.WAIVE_DEPOSIT:
        exception = deposit_waive(deal_id=ask.deal_id, manager=manager, reason=reason, at=now)
    elif approve:
        deal = _lock_deal(ask.deal_id)
        _refuse_closed(deal, "there is nothing to invoice")
        if deal.payment_option != PaymentOption.INVOICE:
            raise BillingError("The deal is no longer invoiced: there is nothing to allow.")
        exception = TermsException.objects.create(
            kind=ExceptionKind.ALLOW_INVOICING,
            customer_id=deal.customer_id,
            deal=deal,
            reason=reason,
            granted_by=manager,
            granted_at=now,
        )
    if exception is not None:
        ExceptionRequest.objects.filter(pk=ask.pk).update(exception=exception)
    _deal_changed(ask.deal_id, manager)
    ask.refresh_from_db()
    return ask
