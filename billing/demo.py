"""Demo money: deposits, invoices, payments in every state, a plan, commission.

``record_money_for`` is called by the pipeline demo while it walks a deal
along its stages: Deposit and Payment cleared are reached only by recording
money (``billing.services``), so every demo deal in those stages has real
payments behind it. ``seed`` then adds what a working month looks like:
invoices, checks waiting to clear, one bounced check, a charge-back, a payment
plan, a manager's exceptions and a rep's own commission rate.
"""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing import services
from billing.models import (
    CommissionRate,
    Invoice,
    MethodKind,
    Payment,
    PaymentKind,
    PaymentMethodKind,
    PaymentPlan,
    PaymentStatus,
)
from billing.policy import instalment_schedule
from pipeline.models import Deal, User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, deposit_amount

BRANDS = [("Visa", "4242"), ("Mastercard", "4444"), ("Amex", "0005"), ("Chase checking", "6789")]


def not_after_now(moment, hours: int = 3):
    """Demo history stays in the past, and later steps of one deal stay later."""
    return min(moment, timezone.now() - timedelta(hours=hours))


def _manager_of(deal: Deal) -> User:
    return deal.rep.manager or User.objects.filter(groups__name="Manager").first()


def record_money_for(deal: Deal, stage: str, at) -> Deal:
    """Record the money that takes ``deal`` into ``stage`` (Deposit or Payment cleared)."""
    at = not_after_now(at)
    if stage == Stage.DEPOSIT:
        if deal.payment_option == PaymentOption.ON_FILE:
            brand, last4 = BRANDS[deal.pk % len(BRANDS)]
            services.payment_method_add(
                deal_id=deal.pk,
                recorded_by=deal.rep,
                kind=MethodKind.BANK_ACCOUNT if "checking" in brand else MethodKind.CARD,
                processor_token=f"tok_demo_{deal.pk:04d}",
                brand=brand,
                last4=last4,
                at=at,
            )
        else:
            upfront = deal.payment_option == PaymentOption.UPFRONT
            payment = services.payment_record(
                deal_id=deal.pk,
                recorded_by=deal.rep,
                kind=PaymentKind.FINAL if upfront else PaymentKind.DEPOSIT,
                method=PaymentMethodKind.CARD if upfront else PaymentMethodKind.CHECK,
                amount=deposit_amount(deal.amount, deal.payment_option),
                reference="Card at the close" if upfront else f"Check {1000 + deal.pk}",
                at=at,
            )
            # A card settles in a few days; a check deposit clears in two.
            if not upfront or at < timezone.now() - timedelta(days=5):
                clear_payment(payment, at + timedelta(days=2))
    elif stage == Stage.PAYMENT_CLEARED:
        for payment in deal.payments.filter(status=PaymentStatus.PENDING):
            clear_payment(payment, at)
        balance = deal.amount - services.live_money(deal.pk)
        if balance > 0:
            invoice = None
            if deal.payment_option == PaymentOption.INVOICE:
                invoice = services.invoice_issue(
                    deal_id=deal.pk,
                    issued_by=deal.rep,
                    issue_date=(at - timedelta(days=20)).date(),
                    at=at - timedelta(days=20),
                )
            payment = services.payment_record(
                deal_id=deal.pk,
                recorded_by=deal.rep,
                kind=PaymentKind.FINAL,
                method=PaymentMethodKind.BANK_TRANSFER if deal.pk % 2 else PaymentMethodKind.CHECK,
                amount=balance,
                reference=f"Remittance {deal.pk:05d}",
                invoice=invoice,
                at=at,
            )
            clear_payment(payment, at + timedelta(hours=1))
    return Deal.objects.get(pk=deal.pk)


def clear_payment(payment: Payment, at) -> None:
    services.payment_clear(
        payment_id=payment.pk,
        actor=_manager_of(payment.deal),
        at=not_after_now(at, hours=2),
    )


def seed(stdout=None) -> None:
    if CommissionRate.objects.filter(rep__username="rep2").exists():
        return  # seeded before (the rate is its first write): the demo is idempotent
    manager = User.objects.get(username="manager")
    now = timezone.now()
    today = timezone.localdate()
    deals = Deal.objects.filter(rep__username__in=["rep", "rep2"]).select_related("customer", "rep")

    # A rep's own commission rate, set by the manager before the demo's history starts.
    CommissionRate.objects.create(
        rep=User.objects.get(username="rep2"),
        rate=Decimal("0.1200"),
        effective_from=today - timedelta(days=365),
        set_by=manager,
    )

    # Invoices for billed deals that are confirmed or delivered; some are overdue.
    billed = deals.filter(
        payment_option=PaymentOption.INVOICE, stage__in=[Stage.AUDIT_CONFIRMED, Stage.DELIVERED]
    ).order_by("promised_at")
    for number, deal in enumerate(billed):
        if services.invoiceable_money(deal) <= 0:
            continue
        issued = max(deal.promised_at + timedelta(days=10), now - timedelta(days=45))
        issued = not_after_now(issued)
        invoice = services.invoice_issue(
            deal_id=deal.pk,
            issued_by=deal.rep,
            issue_date=issued.date(),
            terms_days=15 if number % 2 else 30,
            at=issued,
        )
        if number % 3 == 0 and deal.stage == Stage.DELIVERED:
            # A check in the bank, not cleared yet: half of what is open.
            open_balance = deal.amount - services.live_money(deal.pk)
            services.payment_record(
                deal_id=deal.pk,
                recorded_by=deal.rep,
                kind=PaymentKind.INSTALMENT,
                method=PaymentMethodKind.CHECK,
                amount=(open_balance / 2).quantize(Decimal("0.01")),
                reference=f"Check {2000 + deal.pk}",
                invoice=invoice,
                at=not_after_now(issued + timedelta(days=5)),
            )

    # One bounced check: a paid invoice deal's final check comes back.
    paid_by_check = (
        Payment.objects.filter(
            deal__in=deals,
            deal__stage=Stage.PAYMENT_CLEARED,
            method=PaymentMethodKind.CHECK,
            kind=PaymentKind.FINAL,
            status=PaymentStatus.CLEARED,
        )
        .order_by("-recorded_at")
        .first()
    )
    if paid_by_check is not None:
        services.payment_bounce(
            payment_id=paid_by_check.pk,
            actor=manager,
            reason="Returned by the bank: insufficient funds.",
            at=not_after_now(paid_by_check.cleared_at + timedelta(days=3), hours=1),
        )
        services.invoicing_allow(
            customer_id=paid_by_check.deal.customer_id,
            manager=manager,
            reason="Long-standing customer; the bounce was a bank error they are fixing.",
            valid_until=today + timedelta(days=30),
            at=not_after_now(paid_by_check.cleared_at + timedelta(days=4), hours=0),
        )

    # One card charged back after it settled.
    charged = (
        Payment.objects.filter(
            deal__in=deals,
            deal__stage=Stage.PAYMENT_CLEARED,
            method=PaymentMethodKind.CARD,
            status=PaymentStatus.CLEARED,
        )
        .order_by("-recorded_at")
        .first()
    )
    if charged is not None:
        services.payment_charge_back(
            payment_id=charged.pk,
            actor=manager,
            reason="Cardholder disputed the charge.",
            at=not_after_now(charged.cleared_at + timedelta(days=10), hours=1),
        )

    # One payment plan: a customer in a cash crunch pays the rest in three.
    for deal in deals.filter(stage=Stage.DELIVERED).order_by("-amount"):
        balance = deal.amount - services.live_money(deal.pk)
        if balance <= 0 or PaymentPlan.objects.filter(deal=deal).exists():
            continue
        services.payment_plan_create(  # the audit froze the terms: the manager sets it
            deal_id=deal.pk,
            created_by=deal.rep.manager,
            instalments=instalment_schedule(
                balance, 3, first_due=today + timedelta(days=7), every_days=30
            ),
            note="Cash crunch after their busy season: three monthly payments.",
        )
        break

    # A manager waives one deposit, with a reason.
    waivable = (
        deals.filter(
            stage=Stage.PROMISED,
            deposit_required=True,
            payment_option=PaymentOption.INVOICE,
        )
        .order_by("promised_at")
        .first()
    )
    if waivable is not None:
        services.deposit_waive(
            deal_id=waivable.pk,
            manager=manager,
            reason="Referred by a long-standing customer; their accountant vouches for them.",
        )
    # A rep asks their manager to waive another deposit ("Ask my manager"): the
    # demo manager's reminder carries it, with Approve and Decline.
    askable = (
        deals.filter(
            stage=Stage.PROMISED,
            deposit_required=True,
            payment_option=PaymentOption.INVOICE,
            rep__manager__isnull=False,
        )
        .order_by("-promised_at")
        .first()
    )
    if askable is not None:
        services.deposit_waiver_ask(
            deal_id=askable.pk,
            rep=askable.rep,
            reason="They paid every invoice on time at their last supplier; a deposit "
            "would lose the deal to the competitor.",
        )

    if stdout:
        stdout.write(
            f"  billing: {Invoice.objects.count()} invoices, {Payment.objects.count()} payments"
        )
