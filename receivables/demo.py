"""Demo receivables: the customers' links and their answers, a manager's chase
wording and the emails that went out (history rows: nothing is sent while
seeding). Runs after billing's demo (billing.demo.seed), on its invoices."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from billing import services
from billing.demo import clear_payment, not_after_now
from billing.models import Invoice, PaymentKind, PaymentMethodKind
from pipeline.models import Deal, User
from receivables import links, mail
from receivables.models import ChaseTemplate, CustomerEmail, EmailKind, EmailState, ResponseKind


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
    manager = User.objects.get(username="manager")
    if ChaseTemplate.objects.filter(manager=manager).exists():
        return  # seeded before (the +7 wording is its first write): the demo is idempotent
    now = timezone.now()
    today = timezone.localdate()
    deals = Deal.objects.filter(rep__username__in=["rep", "rep2"]).select_related("customer", "rep")

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
        went = not_after_now(invoice.issued_at + timedelta(hours=2), hours=1)
        history.append(_sent(invoice, EmailKind.INVOICE, None, went))
        if invoice.due_date < today and invoice.state_for(None) in ("issued", "sent"):
            due = timezone.make_aware(datetime.combine(invoice.due_date, time(9)))
            history.append(_sent(invoice, EmailKind.CHASE, 0, not_after_now(due, hours=1)))
    CustomerEmail.objects.bulk_create(history, ignore_conflicts=True)
    # An invoice reads "Sent" once its email left (receivables.mail stamps it so).
    for email in history:
        if email.kind == EmailKind.INVOICE and email.sent_at is not None:
            Invoice.objects.filter(pk=email.invoice_id, emailed_at__isnull=True).update(
                emailed_at=email.sent_at
            )
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
            clear_payment(payment, chased.sent_at + timedelta(days=4))
    # The customer's own links: one overdue invoice's customer promised a date
    # through theirs, another says they paid; one statement link not opened yet.
    open_invoices = list(
        Invoice.objects.filter(deal__in=deals, voided_at__isnull=True)
        .with_cleared()
        .filter(cleared__lt=F("amount"))
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

    if stdout:
        stdout.write(f"  receivables: {CustomerEmail.objects.count()} customer emails")
