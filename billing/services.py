"""Business rules of billing that write: payments, their clearing, invoices, plans.

Every money write locks the deal row first (``select_for_update``), then the
payment or the invoice counter: one fixed order, so two clerks never
deadlock, and the sums a rule checks cannot change under it. Stages move only
through ``pipeline.services.deal_move`` as the system, naming the person whose
recorded fact moved the deal (``deal_sync_stage``). Billing keeps the pipeline's
copies of its facts (the deal's received and cleared money, the customer's
standing and allow-invoicing exception) in the same transaction as the fact,
and every write announces ``pipeline.events.deal_changed``; the pipeline never
calls back into billing.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import (
    LIVE_STATUSES,
    STATUS_MOVES,
    CommissionEntry,
    CommissionKind,
    CommissionRate,
    EventSource,
    ExceptionKind,
    ExceptionRequest,
    Instalment,
    Invoice,
    InvoiceSequence,
    MethodKind,
    Payment,
    PaymentEvent,
    PaymentMethod,
    PaymentPlan,
    PaymentStatus,
    RequestState,
    TermsException,
    WebhookEvent,
    invoice_due_date,
)
from billing.policy import billing_refusal, commission_for
from billing.selectors import (
    active_invoicing_exception,
    customer_payment_history,
    invoicing_request_refusal,
)
from pipeline.access import can_manage, manages_rep
from pipeline.events import deal_changed_on_commit
from pipeline.masking import contains_card_number
from pipeline.models import Customer, Deal, User
from pipeline.selectors import customer_terms
from pipeline.services import deal_move, deal_promise
from pipeline.stages import SYSTEM, Stage
from pipeline.terms import ZERO, PaymentOption, deposit_amount, standing_from_history


class BillingError(Exception):
    """A money rule refused the write; nothing was written.

    ``field`` names the form field the message belongs next to, if any.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotAllowed(BillingError):
    """The person may not do this (a rep clearing a payment, say)."""


def _require_manager(user: User | None, what: str) -> None:
    # A domain refusal (shown next to the form), not a 403: the rule is access's.
    if not can_manage(user):
        raise NotAllowed(f"Only a manager can {what}.")


def _lock_deal(deal_id: int) -> Deal:
    return Deal.objects.select_for_update().get(pk=deal_id)


def _refuse_closed(deal: Deal, what: str) -> None:
    if deal.stage in (Stage.LOST, Stage.WRITTEN_OFF):
        raise BillingError(f"This deal is {deal.get_stage_display().lower()}: {what}.")


def _sum(payments, *statuses: str) -> Decimal:
    total = payments.filter(status__in=statuses).aggregate(total=Coalesce(Sum("amount"), ZERO))[
        "total"
    ]
    return total


def live_money(deal_id: int) -> Decimal:
    """Money received and not bounced (pending or cleared), summed in SQL."""
    return _sum(Payment.objects.filter(deal_id=deal_id), *LIVE_STATUSES)


def deposit_is_in(deal: Deal) -> bool:
    """The customer's stake is in (DOMAIN.md, Deposit).

    On file: a card or account is secured. Otherwise money received — pending
    or cleared, not bounced — covers the deposit (the whole amount, upfront).
    A deposit that bounces later does not move the deal back: the money panel
    shows it missing and the reminders chase it.
    """
    if deal.payment_option == PaymentOption.ON_FILE:
        return deal.payment_methods.exists()
    return live_money(deal.pk) >= deposit_amount(deal.amount, deal.payment_option)


def deal_copy_money(deal: Deal) -> None:
    """Copy the ledger's sums onto the deal: money received (pending or cleared) and cleared.

    In the caller's transaction, under the deal's lock, so the copies never
    disagree with the ledger that committed with them (the database checks
    cleared <= received <= amount). ``updated_at`` moves too: the reminders'
    minute scan re-checks the deals changed lately. ``deal`` is updated in
    place.
    """
    sums = Payment.objects.filter(deal_id=deal.pk).aggregate(
        received=Coalesce(Sum("amount", filter=Q(status__in=LIVE_STATUSES)), ZERO),
        cleared=Coalesce(Sum("amount", filter=Q(status=PaymentStatus.CLEARED)), ZERO),
    )
    now = timezone.now()
    Deal.objects.filter(pk=deal.pk).update(
        received_amount=sums["received"], cleared_amount=sums["cleared"], updated_at=now
    )
    deal.received_amount, deal.cleared_amount, deal.updated_at = (
        sums["received"],
        sums["cleared"],
        now,
    )


def _deal_changed(deal_id: int, actor: User | None) -> None:
    """A money write that copies no sums (an invoice, a plan) still changes the deal:
    ``updated_at`` moves for the minute scan, and ``deal_changed`` is announced."""
    Deal.objects.filter(pk=deal_id).update(updated_at=timezone.now())
    deal_changed_on_commit(deal_id=deal_id, actor_id=actor.pk if actor else None)


def deal_sync_stage(*, deal: Deal, actor: User | None, at: datetime | None = None) -> Deal:
    """Copy the ledger onto the deal and move it to where its money says it is.

    The one place stages follow money, after every money write, with ``deal``
    locked by that write:

    - Promised → Deposit when a required deposit is in (``deposit_is_in``).
    - Delivered → Payment cleared when cleared money covers the amount.
    - Payment cleared → Delivered when it no longer does (a bounce).

    Moves are made through ``pipeline.services.deal_move`` as the system,
    naming ``actor``; the pipeline decides its own follow-on moves from the
    copies written here (money that cleared before delivery), so nothing
    calls back into billing. Then the customer's standing copy is refreshed
    and ``deal_changed`` announced, once.
    """
    deal_copy_money(deal)
    # A deal disputed at audit does not move until its manager decides (money
    # already on its way, e.g. a clearing deposit, is still recorded).
    frozen = deal.is_disputed
    deposit_now = deal.stage == Stage.PROMISED and deal.deposit_required
    if not frozen and deposit_now and deposit_is_in(deal):
        deal = deal_move(
            deal_id=deal.pk,
            to_stage=Stage.DEPOSIT,
            actor=actor,
            as_role=SYSTEM,
            at=at,
            reason="The deposit is in."
            if deal.payment_option != PaymentOption.ON_FILE
            else "A card or account is secured on file.",
        )
    covered = deal.cleared_amount >= deal.amount
    if not frozen and deal.stage == Stage.DELIVERED and covered:
        deal = deal_move(
            deal_id=deal.pk,
            to_stage=Stage.PAYMENT_CLEARED,
            actor=actor,
            as_role=SYSTEM,
            at=at,
            reason="Cleared payments cover the amount.",
        )
    elif not frozen and deal.stage == Stage.PAYMENT_CLEARED and not covered:
        deal = deal_move(
            deal_id=deal.pk,
            to_stage=Stage.DELIVERED,
            actor=actor,
            as_role=SYSTEM,
            at=at,
            reason="A payment bounced: the balance is open again.",
        )
    customer_refresh_standing(customer_id=deal.customer_id)
    # Money in, cleared or bounced: "deposit missing", "payment due" and
    # "payment bounced" follow at once, not at the next sweep.
    deal_changed_on_commit(deal_id=deal.pk, actor_id=actor.pk if actor else None)
    return deal


def customer_refresh_standing(*, customer_id: int) -> None:
    """Copy the standing learned from the customer's history onto the customer row.

    ``pipeline.selectors.customer_terms``, lists and the Not paid yet board
    read ``Customer.standing``; it is refreshed after every money write
    (``deal_sync_stage``, ``invoice_issue``, ``invoice_void``), when a deal
    reaches Payment cleared on delivery (``billing.receivers``) and daily by
    ``billing.tasks.refresh_standings``, as lateness grows and bounces age.
    """
    history = customer_payment_history(Customer(pk=customer_id))
    standing, reason = standing_from_history(history)
    Customer.objects.filter(pk=customer_id).update(standing=standing, standing_reason=reason[:200])


def _invoicing_note(exception: TermsException) -> str:
    until = f" until {exception.valid_until:%-d %b %Y}" if exception.valid_until else ""
    return f"Invoicing allowed by {exception.granted_by}{until}: {exception.reason}"


def customer_copy_invoicing_exception(*, customer_id: int, today: date | None = None) -> None:
    """Copy the allow-invoicing exception in force onto the customer row, for
    ``pipeline.selectors.customer_terms``: the newest one still valid, with its
    last day (the pipeline reads it as holding while today <= that day)."""
    exception = active_invoicing_exception(customer_id, today)
    Customer.objects.filter(pk=customer_id).update(
        invoicing_exception=_invoicing_note(exception)[:400] if exception else "",
        invoicing_exception_until=exception.valid_until if exception else None,
    )


# --- Payments -------------------------------------------


@transaction.atomic
def payment_record(
    *,
    deal_id: int,
    recorded_by: User,
    kind: str,
    method: str,
    amount: Decimal,
    reference: str = "",
    invoice: Invoice | None = None,
    instalment: Instalment | None = None,
    at: datetime | None = None,
) -> Payment:
    """Record money received against a deal; it is pending until it clears.

    Refused, with nothing written: an amount of zero or less, a payment on a
    lost or written-off deal, and more than the balance still open (the
    amount less everything pending or cleared): Cleared never takes an
    overpayment. A deposit that is now in moves the deal to Deposit.
    """
    if amount is None or amount <= 0:
        raise BillingError("The amount must be more than zero.", field="amount")
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "no payment can be recorded against it")
    if refusal := billing_refusal(deal, payment=True):
        raise BillingError(refusal)
    balance = deal.amount - live_money(deal.pk)
    if amount > balance:
        raise BillingError(
            f"That is more than the open balance of {settings.CURRENCY_SYMBOL}{balance:,.2f}: "
            "Cleared does not take an overpayment.",
            field="amount",
        )
    if invoice is not None and (invoice.deal_id != deal.pk or invoice.is_void):
        raise BillingError("Pick an open invoice of this deal.", field="invoice")
    if instalment is not None and instalment.plan.deal_id != deal.pk:
        raise BillingError("Pick an instalment of this deal's plan.", field="instalment")
    now = at or timezone.now()
    payment = Payment.objects.create(
        deal=deal,
        invoice=invoice,
        instalment=instalment,
        kind=kind,
        method=method,
        amount=amount,
        reference=reference,
        recorded_by=recorded_by,
        recorded_at=now,
        status=PaymentStatus.PENDING,
        status_changed_at=now,
    )
    PaymentEvent.objects.create(
        payment=payment,
        from_status="",
        to_status=PaymentStatus.PENDING,
        reason="Received; not cleared yet.",
        actor=recorded_by,
        at=now,
    )
    deal_sync_stage(deal=deal, actor=recorded_by, at=now)
    return payment


def _refusal(payment: Payment, to_status: str) -> str:
    """Why a payment in its current status cannot move to ``to_status``, in words."""
    current = PaymentStatus(payment.status)
    if current == to_status:
        return f"This payment is already {current.label.lower()}: nothing was changed."
    if current in (PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK):
        return f"This payment was {current.label.lower()}: it is final. Record a new payment."
    if to_status == PaymentStatus.CHARGED_BACK:
        return "Only a cleared payment can be charged back; bounce a pending one instead."
    target = PaymentStatus(to_status).label.lower()
    return f"A {current.label.lower()} payment cannot be marked {target}."


def _rep_day(rep: User, at: datetime) -> date:
    """The day ``at`` falls on for the rep: rates start on the rep's own midnight."""
    return at.astimezone(zoneinfo.ZoneInfo(rep.time_zone)).date()


def commission_rate_for(rep: User, at: datetime | None = None) -> Decimal:
    """The rate in force for the rep at ``at`` (now by default): the last one a
    manager set effective on or before that day, else ``CLEARED_COMMISSION_RATE``."""
    return CommissionRate.in_force(rep.pk, _rep_day(rep, at or timezone.now()))


def commission_rate_set(
    *, manager: User, rep: User, percent: Decimal, effective_from: date
) -> CommissionRate:
    """Set a rep's commission rate from a day on (DOMAIN.md, Commission).

    A manager sets the rate of a rep on their own team, as a percent from 0 to
    100, effective today or later (the rep's today). Commission already earned
    keeps the rate it was earned at; commission earned from ``effective_from``
    on uses this one. Raises NotAllowed for someone else's rep, BillingError
    (with the field) for a rate or a day out of bounds.
    """
    if not manages_rep(manager, rep):
        raise NotAllowed("Only the rep's own manager can set their commission rate.")
    if percent.is_nan() or not Decimal("0") <= percent <= Decimal("100"):
        raise BillingError("A rate from 0 to 100 %.", field="percent")
    if percent != percent.quantize(Decimal("0.01")):
        raise BillingError("At most two decimals, e.g. 12.50.", field="percent")
    if effective_from < _rep_day(rep, timezone.now()):
        raise BillingError(
            "From today or a later day: commission already earned does not change.",
            field="effective_from",
        )
    return CommissionRate.objects.create(
        rep=rep,
        rate=percent / 100,
        effective_from=effective_from,
        set_by=manager,
        set_at=timezone.now(),
    )


def _payment_move(
    *,
    payment_id: int,
    to_status: str,
    actor: User | None,
    reason: str,
    source: str,
    at: datetime | None,
) -> tuple[Payment, Deal, datetime]:
    """Move a payment to ``to_status`` with its ledger row: the compare-and-set
    that clearing, bouncing and charging back share.

    Staff moves are for a manager; the payment processor moves as the
    webhook (``actor=None``). Anything but clearing needs a reason. The
    status moves by ``UPDATE … WHERE status IN (…)`` under the deal's lock
    (deal first, then the payment: one order for every money write), so of
    two clerks clearing one payment at once, the second is told it is
    already cleared and writes nothing. Returns the payment as it was before,
    the locked deal and the time of the move.
    """
    if source == EventSource.STAFF:
        _require_manager(actor, "clear, bounce or charge back a payment")
    if to_status != PaymentStatus.CLEARED and not reason.strip():
        raise BillingError("Say why: the reason goes on the ledger.", field="reason")
    deal_id = Payment.objects.values_list("deal_id", flat=True).get(pk=payment_id)
    deal = _lock_deal(deal_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    now = at or timezone.now()
    changes = {"status": to_status, "status_changed_at": now}
    if to_status == PaymentStatus.CLEARED:
        changes["cleared_at"] = now
    moved = Payment.objects.filter(pk=payment.pk, status__in=STATUS_MOVES[to_status]).update(
        **changes
    )
    if not moved:
        raise BillingError(_refusal(payment, to_status))
    PaymentEvent.objects.create(
        payment=payment,
        from_status=payment.status,
        to_status=to_status,
        reason=reason.strip(),
        actor=actor,
        source=source,
        at=now,
    )
    return payment, deal, now


@transaction.atomic
def payment_clear(
    *,
    payment_id: int,
    actor: User | None,
    reason: str = "",
    source: str = EventSource.STAFF,
    at: datetime | None = None,
) -> Payment:
    """Clear a pending payment: the money is ours (DOMAIN.md, Payment cleared).

    For a manager or the payment processor, never a rep. The rep earns
    commission on it (``commission_earn``); cleared money that covers a
    delivered deal moves it to Payment cleared (``deal_sync_stage``).
    """
    payment, deal, now = _payment_move(
        payment_id=payment_id,
        to_status=PaymentStatus.CLEARED,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )
    commission_earn(payment=payment, deal=deal, actor=actor, at=now)
    deal_sync_stage(deal=deal, actor=actor, at=now)
    payment.refresh_from_db()
    return payment


@transaction.atomic
def payment_bounce(
    *,
    payment_id: int,
    actor: User | None,
    reason: str,
    source: str = EventSource.STAFF,
    at: datetime | None = None,
) -> Payment:
    """A pending or cleared payment bounced (a check returned), with the reason.

    Commission it earned is clawed back (``commission_claw_back``), and a
    deal it no longer covers goes back out of Payment cleared (seed 004).
    """
    return _payment_taken_back(
        payment_id=payment_id,
        to_status=PaymentStatus.BOUNCED,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )


@transaction.atomic
def payment_charge_back(
    *,
    payment_id: int,
    actor: User | None,
    reason: str,
    source: str = EventSource.STAFF,
    at: datetime | None = None,
) -> Payment:
    """A cleared card payment was charged back by the cardholder, with the reason.

    Like a bounce: the commission is clawed back and the deal follows its money.
    """
    return _payment_taken_back(
        payment_id=payment_id,
        to_status=PaymentStatus.CHARGED_BACK,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )


def _payment_taken_back(*, payment_id, to_status, actor, reason, source, at) -> Payment:
    payment, deal, now = _payment_move(
        payment_id=payment_id,
        to_status=to_status,
        actor=actor,
        reason=reason,
        source=source,
        at=at,
    )
    commission_claw_back(payment=payment, deal=deal, actor=actor, at=now)
    deal_sync_stage(deal=deal, actor=actor, at=now)
    payment.refresh_from_db()
    return payment


# The service for each status a form or the processor may ask a payment to move to.
PAYMENT_MOVES = {
    PaymentStatus.CLEARED: payment_clear,
    PaymentStatus.BOUNCED: payment_bounce,
    PaymentStatus.CHARGED_BACK: payment_charge_back,
}


def payment_move_service(to_status: str):
    """``payment_clear``, ``payment_bounce`` or ``payment_charge_back``, for a chosen status."""
    try:
        return PAYMENT_MOVES[to_status]
    except KeyError:
        raise BillingError("Choose cleared, bounced or charged back.", field="to_status") from None


# --- Commission -------------------------------------------


def commission_earn(
    *, payment: Payment, deal: Deal, actor: User | None, at: datetime
) -> CommissionEntry:
    """Cleared money earns the deal's rep commission at the rate in force when it cleared."""
    rate = commission_rate_for(deal.rep, at)
    return CommissionEntry.objects.create(
        rep=deal.rep,
        deal=deal,
        payment=payment,
        kind=CommissionKind.EARNED,
        base=payment.amount,
        rate=rate,
        amount=commission_for(payment.amount, rate),
        at=at,
        actor=actor,
    )


def commission_claw_back(
    *, payment: Payment, deal: Deal, actor: User | None, at: datetime
) -> CommissionEntry | None:
    """Take back the commission a bounced or charged-back payment had earned.

    "It is not a sale until it is paid" (DOMAIN.md, Commission): a clawback of
    the same base and amount, negative, for the rep who earned it. None if
    the payment never cleared, so earned nothing.
    """
    earned = CommissionEntry.objects.filter(payment=payment, kind=CommissionKind.EARNED).first()
    if earned is None:
        return None
    return CommissionEntry.objects.create(
        rep=earned.rep,
        deal=deal,
        payment=payment,
        kind=CommissionKind.CLAWBACK,
        base=-earned.base,
        rate=earned.rate,
        amount=-earned.amount,
        at=at,
        actor=actor,
    )


# --- Payment methods on file -------------------------------------------


def refuse_full_number(value: str, field: str) -> None:
    """A full card or account number never gets further than this (PCI DSS)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if contains_card_number(value) or len(digits) >= 12:
        raise BillingError(
            "That looks like a full card or account number: Cleared never stores one. "
            "Enter only what the payment processor gives back.",
            field=field,
        )


@transaction.atomic
def payment_method_add(
    *,
    deal_id: int,
    recorded_by: User,
    kind: str,
    processor_token: str,
    brand: str,
    last4: str,
    at: datetime | None = None,
) -> PaymentMethod:
    """Secure a card or account on file: the processor's token, brand or bank, last 4.

    A full number in any field is refused and nothing of it is kept. On an
    on-file deal whose deposit is required, this is the deposit: the deal
    moves to Deposit.
    """
    refuse_full_number(processor_token, "processor_token")
    refuse_full_number(brand, "brand")
    last4 = last4.strip()
    if not (len(last4) == 4 and last4.isdigit()):
        raise BillingError("Enter exactly the last 4 digits, nothing more.", field="last4")
    if kind not in MethodKind.values:
        raise BillingError("Choose card or bank account.", field="kind")
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "nothing can be put on file for it")
    if deal.is_disputed:
        raise BillingError(billing_refusal(deal))
    now = at or timezone.now()
    method = PaymentMethod.objects.create(
        customer=deal.customer,
        deal=deal,
        kind=kind,
        processor_token=processor_token.strip(),
        brand=brand.strip(),
        last4=last4,
        recorded_by=recorded_by,
        recorded_at=now,
    )
    deal_sync_stage(deal=deal, actor=recorded_by, at=now)
    return method


# --- Invoices -------------------------------------------


def invoiced_money(deal_id: int) -> Decimal:
    return Invoice.objects.filter(deal_id=deal_id, voided_at__isnull=True).aggregate(
        total=Coalesce(Sum("amount"), ZERO)
    )["total"]


def invoiceable_money(deal: Deal) -> Decimal:
    """What is left to bill: the amount less open invoices and payments made without one."""
    unbilled_payments = _sum(
        Payment.objects.filter(deal_id=deal.pk, invoice__isnull=True), *LIVE_STATUSES
    )
    return deal.amount - invoiced_money(deal.pk) - unbilled_payments


def _next_invoice_number() -> int:
    """Take the next number from the deployment's counter, locked until commit."""
    InvoiceSequence.objects.get_or_create(pk=1)
    sequence = InvoiceSequence.objects.select_for_update().get(pk=1)
    InvoiceSequence.objects.filter(pk=1).update(last_number=F("last_number") + 1)
    return sequence.last_number + 1


@transaction.atomic
def invoice_issue(
    *,
    deal_id: int,
    issued_by: User,
    amount: Decimal | None = None,
    issue_date: date | None = None,
    terms_days: int | None = None,
    at: datetime | None = None,
) -> Invoice:
    """Issue an invoice for a billed deal, numbered from the gap-free sequence.

    Only invoice deals are invoiced, never for more than is left to bill
    (``invoiceable_money``); the amount defaults to all of that. Terms default to net
    ``CLEARED_INVOICE_TERMS_DAYS``; the due date follows from them.
    """
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "it cannot be invoiced")
    if deal.payment_option != PaymentOption.INVOICE:
        raise BillingError(
            f"This deal is paid {deal.get_payment_option_display().split(' —')[0].lower()}: "
            "it is not invoiced."
        )
    if refusal := billing_refusal(deal) or invoicing_request_refusal(deal):
        raise BillingError(refusal)
    uninvoiced = invoiceable_money(deal)
    if uninvoiced <= 0:
        raise BillingError("The whole amount is invoiced or paid already.", field="amount")
    amount = uninvoiced if amount is None else amount
    if amount <= 0:
        raise BillingError("The amount must be more than zero.", field="amount")
    if amount > uninvoiced:
        raise BillingError(
            f"Only {settings.CURRENCY_SYMBOL}{uninvoiced:,.2f} is left to invoice.",
            field="amount",
        )
    issue_date = issue_date or timezone.localdate()
    terms_days = settings.CLEARED_INVOICE_TERMS_DAYS if terms_days is None else terms_days
    invoice = Invoice.objects.create(
        deal=deal,
        number=_next_invoice_number(),
        amount=amount,
        issue_date=issue_date,
        terms_days=terms_days,
        due_date=invoice_due_date(issue_date, terms_days),
        issued_by=issued_by,
        issued_at=at or timezone.now(),
    )
    # An invoice is payment history: one past its due date makes a customer late.
    customer_refresh_standing(customer_id=deal.customer_id)
    _deal_changed(deal.pk, issued_by)
    return invoice


@transaction.atomic
def invoice_void(*, invoice_id: int, actor: User, reason: str) -> Invoice:
    """Void an invoice sent in error (manager only); its number stays used."""
    _require_manager(actor, "void an invoice")
    if not reason.strip():
        raise BillingError("Say why the invoice is void.", field="reason")
    invoice = Invoice.objects.get(pk=invoice_id)
    deal = _lock_deal(invoice.deal_id)
    if invoice.payments.filter(status__in=LIVE_STATUSES).exists():
        raise BillingError("Payments are recorded against this invoice: it cannot be voided.")
    voided = Invoice.objects.filter(pk=invoice.pk, voided_at__isnull=True).update(
        voided_at=timezone.now(), voided_by=actor, void_reason=reason.strip()
    )
    if not voided:
        raise BillingError("This invoice is void already.")
    customer_refresh_standing(customer_id=deal.customer_id)
    _deal_changed(deal.pk, actor)
    invoice.refresh_from_db()
    return invoice


# --- Payment plans -------------------------------------------


@transaction.atomic
def payment_plan_create(
    *,
    deal_id: int,
    created_by: User,
    instalments: list[tuple[date, Decimal]],
    note: str = "",
    today: date | None = None,
) -> PaymentPlan:
    """Split the deal's open balance into dated instalments (seed 001, tip 3).

    The instalments must add up to the open balance exactly, each more than
    zero, due on distinct dates from today on; a deal has one plan.
    """
    deal = _lock_deal(deal_id)
    _refuse_closed(deal, "it cannot have a payment plan")
    if PaymentPlan.objects.filter(deal=deal).exists():
        raise BillingError("This deal has a payment plan already.")
    balance = deal.amount - live_money(deal.pk)
    if balance <= 0:
        raise BillingError("Nothing is left to pay: there is no balance to split.")
    today = today or timezone.localdate()
    dates = [due for due, _ in instalments]
    if not instalments:
        raise BillingError("A plan has at least one instalment.", field="count")
    if any(amount <= 0 for _, amount in instalments):
        raise BillingError("Too many instalments for this balance.", field="count")
    if min(dates) < today:
        raise BillingError("The first instalment can't be due in the past.", field="first_due")
    if dates != sorted(set(dates)):
        raise BillingError("Each instalment needs its own, later due date.", field="first_due")
    total = sum((amount for _, amount in instalments), ZERO)
    if total != balance:
        raise BillingError(
            f"The instalments add up to {total:,.2f}; the open balance is {balance:,.2f}.",
            field="count",
        )
    plan = PaymentPlan.objects.create(deal=deal, created_by=created_by, note=note)
    Instalment.objects.bulk_create(
        Instalment(plan=plan, sequence=number, due_date=due, amount=amount)
        for number, (due, amount) in enumerate(instalments, start=1)
    )
    # The instalments' "payment due" reminders, now rather than at the next scan.
    _deal_changed(deal.pk, created_by)
    return plan


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


# --- "Ask my manager": a rep asks for an exception -------------------------------------


class AlreadyDecided(BillingError):
    """Someone decided the request first; this decision changed nothing."""


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


# --- The payment processor's webhook -------------------------------------------


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # "applied", "ignored" (valid but refused, e.g. already cleared), "duplicate"
    detail: str


@transaction.atomic
def webhook_event_apply(
    *, event_id: str, type: str, to_status: str, payment_id: int, reason: str, payload: dict
) -> WebhookOutcome:
    """Apply a verified processor event once (``billing.webhooks`` checks the signature).

    A repeated event id changes nothing. A valid event the ledger refuses (a
    payment a manager cleared already) is recorded as ignored, so the
    processor stops retrying it. The event row and the status change commit
    together; of two deliveries racing, the unique event id lets one win.
    """
    if not Payment.objects.filter(pk=payment_id).exists():
        raise BillingError(f"No payment {payment_id} in Cleared.")
    if WebhookEvent.objects.filter(event_id=event_id).exists():
        return WebhookOutcome("duplicate", "Already received; nothing changed.")
    try:
        with transaction.atomic():
            payment_move_service(to_status)(
                payment_id=payment_id,
                actor=None,
                reason=reason or f"Reported by the payment processor ({type}).",
                source=EventSource.WEBHOOK,
            )
        outcome = WebhookOutcome("applied", f"Payment {payment_id} is {to_status}.")
    except BillingError as exc:
        outcome = WebhookOutcome("ignored", str(exc))
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_id=event_id,
                type=type,
                payment_id=payment_id,
                payload=payload,
                outcome=f"{outcome.status}: {outcome.detail}"[:200],
            )
    except IntegrityError:
        # The same event committed meanwhile: undo ours, report it as a repeat.
        transaction.set_rollback(True)
        return WebhookOutcome("duplicate", "Already received; nothing changed.")
    return outcome
