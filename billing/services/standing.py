"""The stage follows the money: the ledger's copies on the deal and the customer (money
received and cleared, the standing, the allow-invoicing exception) and the one place
a money write moves the deal."""

from datetime import date, datetime
from decimal import Decimal

from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import (
    LIVE_STATUSES,
    Payment,
    PaymentStatus,
    Refund,
    TermsException,
)
from billing.selectors import (
    active_invoicing_exception,
    customer_payment_history,
)
from pipeline.events import deal_changed_on_commit
from pipeline.history import history_record_update
from pipeline.models import Customer, Deal, User
from pipeline.sameness import newer_matches, with_floor
from pipeline.services import deal_move
from pipeline.stages import SYSTEM, Stage
from pipeline.terms import ZERO, PaymentOption, deposit_amount, standing_from_history


def _sum(payments, *statuses: str) -> Decimal:
    total = payments.filter(status__in=statuses).aggregate(total=Coalesce(Sum("amount"), ZERO))[
        "total"
    ]
    return total


def _refunded(deal_id: int) -> Decimal:
    """Cleared money given back on the deal (live refunds), summed in SQL."""
    refunds = Refund.objects.live().filter(deal_id=deal_id)
    return refunds.aggregate(total=Coalesce(Sum("amount"), ZERO))["total"]


def live_money(deal_id: int | None = None, **where) -> Decimal:
    """Money received and not bounced (pending or cleared), less what was refunded, on
    a deal's payments (``live_money(deal.pk)``) or on those ``where`` says
    (``invoice=…``, ``instalment=…``, ``deal_id=…, invoice__isnull=True``).

    The one definition of "money in or on its way": what is left to pay, to
    invoice, or to charge is an amount less this."""
    if deal_id is not None:
        where["deal_id"] = deal_id
    given_back = (
        Refund.objects.live()
        .filter(payment=OuterRef("pk"))
        .order_by()
        .values("payment")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    # One query: each live payment less what was given back of it.
    return (
        Payment.objects.filter(status__in=LIVE_STATUSES, **where)
        .annotate(back=Coalesce(Subquery(given_back), ZERO))
        .aggregate(total=Coalesce(Sum(F("amount") - F("back")), ZERO))["total"]
    )


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
    """Copy the ledger's sums onto the deal: money received (pending or cleared) and cleared,
    each less the money refunded.

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
    refunded = _refunded(deal.pk)
    received, cleared = sums["received"] - refunded, sums["cleared"] - refunded
    now = timezone.now()
    Deal.objects.filter(pk=deal.pk).update(
        received_amount=received, cleared_amount=cleared, updated_at=now
    )
    history_record_update(Deal, [deal.pk])
    deal.received_amount, deal.cleared_amount, deal.updated_at = received, cleared, now


def deal_sync_stage(
    *, deal: Deal, actor: User | None, at: datetime | None = None, taken_back: str = ""
) -> Deal:
    """Copy the ledger onto the deal and move it to where its money says it is.

    The one place stages follow money, after every money write, with ``deal``
    locked by that write:

    - Promised → Deposit when a required deposit is in (``deposit_is_in``).
    - Delivered → Payment cleared when cleared money covers the amount, and
      Payment cleared → Delivered when it no longer does (a bounce):
      ``Deal.cleared_money_move``, the rule ``deal_move`` follows too.

    ``taken_back`` says how money left (a charge-back is not a bounce): the
    stage event's reason names it, so the timeline reads what happened.

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
    follow = None if frozen else deal.cleared_money_move()
    if follow is not None:
        to_stage, reason = follow
        if taken_back and to_stage == Stage.DELIVERED:
            reason = f"{taken_back}: the balance is open again."
        deal = deal_move(
            deal_id=deal.pk, to_stage=to_stage, actor=actor, as_role=SYSTEM, at=at, reason=reason
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

    Never better than the standing of an older customer it matches, until a
    manager says they are different people (``pipeline.sameness``); the newer
    customers matching this one follow it. A change is on the customer's record.
    """
    _refresh_standing(customer_id, seen=set())


def _refresh_standing(customer_id: int, *, seen: set[int]) -> None:
    seen.add(customer_id)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return
    standing, reason = standing_from_history(customer_payment_history(customer))
    standing, reason = with_floor(customer, standing, reason)
    changed = (
        Customer.objects.filter(pk=customer_id)
        .exclude(standing=standing, standing_reason=reason[:200])
        .update(standing=standing, standing_reason=reason[:200])
    )
    if changed:
        history_record_update(Customer, [customer_id])
    for newer in newer_matches(customer):
        if newer not in seen:
            _refresh_standing(newer, seen=seen)


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
    history_record_update(Customer, [customer_id])
