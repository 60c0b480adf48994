"""Demo money: deposits, invoices, payments in every state, a plan, commission.

``record_money_for`` is called by the pipeline demo while it walks a deal
along its stages: Deposit and Payment cleared are reached only by recording
money (``billing.services``), so every demo deal in those stages has real
payments behind it. ``seed`` then adds what a working month looks like:
invoices, checks waiting to clear, one bounced check, a charge-back, a payment
plan, a manager's exceptions and a rep's own commission rate.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing import links, mail, services
from billing.models import (
    CommissionRate,
    CustomerEmail,
    EmailKind,
    EmailState,
    Invoice,
    MethodKind,
    Payment,
    PaymentKind,
    PaymentMethodKind,
    PaymentPlan,
    PaymentStatus,
    ResponseKind,
)
from billing.policy import instalment_schedule
from pipeline.models import Deal, User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, deposit_amount

BRANDS = [("Visa", "4242"), ("Mastercard", "4444"), ("Amex", "0005"), ("Chase checking", "6789")]


def _not_after_now(moment, hours: int = 3):
    """Demo history stays in the past, and later steps of one deal stay later."""
    return min(moment, timezone.now() - timedelta(hours=hours))


def _manager_of(deal: Deal) -> User:
    return deal.rep.manager or User.objects.filter(groups__name="Manager").first()


def record_money_for(deal: Deal, stage: str, at) -> Deal:
    """Record the money that takes ``deal`` into ``stage`` (Deposit or Payment cleared)."""
    at = _not_after_now(at)
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
                _clear(payment, at + timedelta(days=2))
    elif stage == Stage.PAYMENT_CLEARED:
        for payment in deal.payments.filter(status=PaymentStatus.PENDING):
            _clear(payment, at)
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
            _clear(payment, at + timedelta(hours=1))
    return Deal.objects.get(pk=deal.pk)


def _clear(payment: Payment, at) -> None:
    services.payment_clear(
        payment_id=payment.pk,
        actor=_manager_of(payment.deal),
        at=_not_after_now(at, hours=2),
    )


def _sent(invoice: Invoice, kind: str, rung: int | None, at) -> CustomerEmail:
    """An email that went to the customer: a row of the demo's history."""
    deal = invoice.deal
    return CustomerEmail(
        kind=kind,
        customer=deal.customer,
        deal=deal,
        invoice=invoice,
        rung=rung,
        state=EmailState.SENT,
        to_address=deal.customer.billing_address,
        subject=f"Invoice {invoice.display_number}",
        sender=deal.rep,
        created_at=at,
        next_attempt_at=at,
        attempts=1,
        message_id=mail.new_message_id(),
        sent_at=at,
        settled_at=at,
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
        issued = _not_after_now(issued)
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
                at=_not_after_now(issued + timedelta(days=5)),
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
            at=_not_after_now(paid_by_check.cleared_at + timedelta(days=3), hours=1),
        )
        services.invoicing_allow(
            customer_id=paid_by_check.deal.customer_id,
            manager=manager,
            reason="Long-standing customer; the bounce was a bank error they are fixing.",
            valid_until=today + timedelta(days=30),
            at=_not_after_now(paid_by_check.cleared_at + timedelta(days=4), hours=0),
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
            at=_not_after_now(charged.cleared_at + timedelta(days=10), hours=1),
        )

    # One payment plan: a customer in a cash crunch pays the rest in three.
    for deal in deals.filter(stage=Stage.DELIVERED).order_by("-amount"):
        balance = deal.amount - services.live_money(deal.pk)
        if balance <= 0 or PaymentPlan.objects.filter(deal=deal).exists():
            continue
        services.payment_plan_create(
            deal_id=deal.pk,
            created_by=deal.rep,
            instalments=instalment_schedule(
                balance, 3, first_due=today + timedelta(days=7), every_days=30
            ),
            note="Cash crunch after their busy season: three monthly payments.",
        )
        break

    # The customer's own links: one overdue invoice's customer promised a date
    # through theirs, another says they paid; one statement link not opened yet.
    cleared = Sum("payments__amount", filter=Q(payments__status=PaymentStatus.CLEARED))
    open_invoices = list(
        Invoice.objects.filter(deal__in=deals, voided_at__isnull=True)
        .annotate(paid=Coalesce(cleared, Value(Decimal("0.00"))))
        .filter(paid__lt=F("amount"))
        .select_related("deal", "deal__customer", "deal__rep")
        .order_by("due_date", "number")[:3]
    )
    answers = [
        {"kind": ResponseKind.PROMISE, "promised_for": today + timedelta(days=3)},
        {"kind": ResponseKind.PAID, "reference": "BACS 20481"},
    ]
    for invoice, answer in zip(open_invoices, answers, strict=False):
        link = links.customer_link_create(
            customer=invoice.deal.customer, invoice=invoice, created_by=invoice.deal.rep
        )
        links.customer_respond(link_id=link.pk, today=today, **answer)
    if len(open_invoices) > 2:
        deal = open_invoices[2].deal
        links.customer_link_create(customer=deal.customer, created_by=deal.rep)

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

    # Emails to customers: the manager's own words for the +7 reminder, and the
    # emails that went out (history rows: nothing is sent while seeding).
    mail.chase_template_save(
        manager=manager,
        rung=7,
        subject="Invoice {invoice_number}: a week past due",
        body="Hello {customer},\n\nInvoice {invoice_number} for {amount_due} was due on "
        "{due_date}. Could you check where it is in your payment run and let me know?\n\n"
        "Thank you,\n{rep_name}",
    )
    history = []
    for invoice in Invoice.objects.filter(deal__in=deals).select_related("deal__customer")[:8]:
        if not invoice.deal.customer.billing_address:
            continue
        went = _not_after_now(invoice.issued_at + timedelta(hours=2), hours=1)
        history.append(_sent(invoice, EmailKind.INVOICE, None, went))
        if invoice.due_date < today and invoice.state_for(None) == "sent":
            due = timezone.make_aware(datetime.combine(invoice.due_date, time(9)))
            history.append(_sent(invoice, EmailKind.CHASE, 0, _not_after_now(due, hours=1)))
    CustomerEmail.objects.bulk_create(history, ignore_conflicts=True)
    # The first chase worked: half of what was open came in three days later.
    chased = next((email for email in history if email.kind == EmailKind.CHASE), None)
    if chased is not None and chased.sent_at + timedelta(days=4) < now:
        deal = chased.invoice.deal
        open_balance = min(deal.amount - services.live_money(deal.pk), chased.invoice.amount)
        if open_balance > 0:
            payment = services.payment_record(
                deal_id=deal.pk,
                recorded_by=deal.rep,
                kind=PaymentKind.INSTALMENT,
                method=PaymentMethodKind.BANK_TRANSFER,
                amount=(open_balance / 2).quantize(Decimal("0.01")),
                reference="Transfer after the reminder",
                invoice=chased.invoice,
                at=chased.sent_at + timedelta(days=3),
            )
            _clear(payment, chased.sent_at + timedelta(days=4))
    if stdout:
        stdout.write(
            f"  billing: {Invoice.objects.count()} invoices, {Payment.objects.count()} payments"
        )
