"""Emails to the customer: the invoice with its PDF, and the polite chase (issue 14).

Every email is a ``CustomerEmail`` row first (recorded exactly once, held by
unique constraints), then sent by the Celery worker (at least once):

1. ``invoice_email_request`` / ``chase_request`` (a rep's click) and
   ``chase_queue_auto`` (the beat, for rungs a manager set to go by
   themselves) insert the row; the last rung of the chase waits for a
   manager (``chase_approve``).
2. ``receivables.sending.customer_email_send`` claims the row by compare-and-set (``queued`` →
   ``sending`` with a lease), locks the deal, checks again that it may go
   (``email_refusal``: a payment recorded meanwhile stops the chase), sends,
   and records it on the deal's timeline as a touch.
3. A refusing mail server puts the row back with a back-off; a permanent
   refusal of the address (SMTP 5xx on RCPT) marks it bouncing on the
   customer and the row ``bounced`` (the rep's reminder reads it).

The email's text goes through ``mask_card_numbers``: no full card or account
number leaves in an email, even one that got past the masked fields.
"""

import logging
import secrets
import string
from datetime import date, datetime, time, timedelta
from email.utils import formataddr, parseaddr
from zoneinfo import ZoneInfo

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format

from billing.models import Invoice, PaymentStatus
from billing.services import BillingError, NotAllowed
from pipeline.access import can_manage, manages_rep
from pipeline.masking import mask_card_numbers
from pipeline.models import Deal, User
from pipeline.stages import Stage
from pipeline.terms import money_text
from pipeline.text import single_line
from receivables import chase
from receivables.models import NEVER_REACHED, ChaseTemplate, CustomerEmail, EmailKind, EmailState
from receivables.pdf import PdfUnavailable, render_pdf

logger = logging.getLogger(__name__)


# --- may it go? -------------------------------------------------------------------


def email_refusal(
    invoice: Invoice, kind: str, *, deal: Deal | None = None, today: date | None = None
) -> str | None:
    """Why this email may not go to the customer now, or None (issue 14's rules).

    Nothing goes for a void invoice, a deal disputed, lost or written off, an
    invoice already paid, or an address that bounced. A payment reminder also
    waits while a payment is pending (a check not cleared yet), never goes
    before the due date, nor to a customer marked "do not chase by email".
    """
    deal = deal or invoice.deal
    customer = deal.customer
    today = today or timezone.localdate()
    if invoice.is_void:
        return "The invoice is void."
    if deal.is_disputed:
        return "The customer disputed this sale at audit: nothing goes until the manager decides."
    if deal.stage in (Stage.LOST, Stage.WRITTEN_OFF):
        return f"The deal is {deal.get_stage_display().lower()}."
    if deal.stage == Stage.PAYMENT_CLEARED or invoice.cleared_money() >= invoice.amount:
        return "The invoice is paid."
    if not customer.billing_address:
        return "The customer has no email address: add their billing email on their page."
    if customer.billing_address_bounces:
        return (
            f"Email to {customer.billing_address} bounced: correct the address on the "
            "customer's page."
        )
    if kind == EmailKind.CHASE:
        if not customer.chase_by_email:
            return "The customer is marked “do not chase by email”: call them instead."
        if deal.received_amount > deal.cleared_amount:
            return "A payment is pending: the chase waits until it clears or bounces."
        if invoice.due_date > today:
            return f"The invoice is not due until {date_format(invoice.due_date, 'j M Y')}."
    return None


# --- the words ------------------------------------------------------------------------


def team_manager_id(rep: User) -> int:
    """Whose chase templates a rep's deals use: their manager's (a manager's own)."""
    return rep.manager_id or rep.pk


def chase_settings(manager_id: int) -> dict[int, ChaseTemplate]:
    return {t.rung: t for t in ChaseTemplate.objects.filter(manager_id=manager_id)}


def chase_wording(manager_id: int, rung: int, days_late: int = 0) -> chase.Wording:
    """The team manager's wording of a rung, else the default (which says how late)."""
    own = ChaseTemplate.objects.filter(manager_id=manager_id, rung=rung).first()
    if own is not None:
        return chase.Wording(own.subject, own.body)
    return chase.default_wording(rung, days_late)


def days_late(invoice: Invoice, today: date | None = None) -> int:
    return max(((today or timezone.localdate()) - invoice.due_date).days, 0)


def invoice_values(invoice: Invoice, today: date | None = None) -> dict[str, str]:
    """The placeholders of a chase template, for this invoice (chase.PLACEHOLDERS)."""
    today = today or timezone.localdate()
    deal = invoice.deal
    return {
        "customer": deal.customer.company or deal.customer.name,
        "invoice_number": invoice.display_number,
        "amount_due": money_text(invoice.amount - invoice.cleared_money()),
        "due_date": date_format(invoice.due_date, "j F Y"),
        "days_overdue": str(max((today - invoice.due_date).days, 0)),
        "rep_name": str(deal.rep),
    }


def chase_preview(
    wording: chase.Wording,
    values: dict[str, str],
    link_url: str | None = None,
    pay_url: str | None = None,
) -> dict:
    """Subject, plain text and HTML of a chase email (what the preview and the send show)."""
    subject = single_line(chase.fill(wording.subject, values))
    body = chase.fill(wording.body, values)
    context = {"subject": subject, "body": body, "link_url": link_url, "pay_url": pay_url}
    return {
        "subject": mask_card_numbers(subject),
        "text": mask_card_numbers(render_to_string("receivables/email/chase.txt", context)),
        "html": mask_card_numbers(render_to_string("receivables/email/chase.html", context)),
        # The body alone, for the previews inside the app's pages.
        "body_html": mask_card_numbers(
            render_to_string("receivables/email/_chase_body.html", context)
        ),
    }


def invoice_document(invoice: Invoice) -> dict:
    """What the invoice page and its PDF show (one template: receivables/invoice_print.html)."""
    payments = list(
        invoice.payments.filter(status=PaymentStatus.CLEARED)
        .select_related(None)
        .order_by("cleared_at")
    )
    invoice.cleared = invoice.cleared_money()
    invoice.state = invoice.state_for(invoice.cleared)
    return {
        "invoice": invoice,
        "deal": invoice.deal,
        "customer": invoice.deal.customer,
        "payments": payments,
        "outstanding": invoice.amount - invoice.cleared,
        "CURRENCY": settings.CURRENCY,
    }


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice's PDF, from the page's template. PdfUnavailable without Pango."""
    return render_pdf("receivables/invoice_print.html", invoice_document(invoice))


def invoice_email_content(
    invoice: Invoice, link_url: str | None = None, pay_url: str | None = None
) -> dict:
    values = invoice_values(invoice)
    context = {
        **invoice_document(invoice),
        "values": values,
        "rep": invoice.deal.rep,
        "link_url": link_url,
        "pay_url": pay_url,
    }
    subject = f"Invoice {values['invoice_number']}: {values['amount_due']} due {values['due_date']}"
    return {
        "subject": mask_card_numbers(subject),
        "text": mask_card_numbers(render_to_string("receivables/email/invoice.txt", context)),
        "html": mask_card_numbers(render_to_string("receivables/email/invoice.html", context)),
    }


def _from_in_the_name_of(rep: User) -> str:
    """From: the rep's name on the deployment's own address (so SPF/DKIM hold)."""
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((single_line(str(rep)), address))


def build_message(
    email: CustomerEmail, link_url: str | None = None, pay_url: str | None = None
) -> EmailMultiAlternatives:
    """The email of a row: HTML and plain text, the invoice's PDF attached; ``pay_url``
    the customer's "Pay now" page (paying online)."""
    invoice = email.invoice
    rep = email.sender or invoice.deal.rep
    if email.kind == EmailKind.CHASE:
        wording = chase_wording(team_manager_id(invoice.deal.rep), email.rung, days_late(invoice))
        content = chase_preview(wording, invoice_values(invoice), link_url, pay_url)
    else:
        content = invoice_email_content(invoice, link_url, pay_url)
    # Every header value on one line (pipeline.text.single_line): a company, a
    # name or a subject with a line break in it never stops the email.
    message = EmailMultiAlternatives(
        subject=single_line(content["subject"]),
        body=content["text"],
        from_email=_from_in_the_name_of(rep),
        to=[single_line(email.to_address)],
        reply_to=[rep.email] if rep.email else [],
        headers={"Message-ID": email.message_id},
    )
    message.attach_alternative(content["html"], "text/html")
    try:
        message.attach(f"{invoice.display_number}.pdf", invoice_pdf(invoice), "application/pdf")
    except PdfUnavailable:
        logger.warning("Invoice %s emailed without its PDF: PDF is unavailable here", invoice)
    return message


# --- asking for an email ----------------------------------------------------------------


def new_message_id() -> str:
    """A Message-ID of letters only: a run of random digits could look like a card number."""
    local = "".join(secrets.choice(string.ascii_lowercase) for _ in range(26))
    return f"<{local}@{settings.CLEARED_EMAIL_DOMAIN}>"


def _new_row(invoice: Invoice, *, kind: str, **fields) -> CustomerEmail:
    """A new email row; it goes in the name of the deal's rep, whoever clicked
    (the customer knows their rep; a manager's approval is kept in ``approved_by``)."""
    customer = invoice.deal.customer
    return CustomerEmail(
        kind=kind,
        customer=customer,
        deal=invoice.deal,
        invoice=invoice,
        sender=invoice.deal.rep,
        to_address=customer.billing_address,
        message_id=new_message_id(),
        **fields,
    )


SEND_TASK = "billing.customer_email_send"


def _enqueue(email: CustomerEmail) -> None:
    """Queue the send once the row is committed; if the broker is down, the
    beat's run (``customer_emails_run``) sends it anyway."""

    def send() -> None:
        try:
            current_app.send_task(SEND_TASK, args=(email.pk,), retry=False)
        except Exception as exc:
            logger.warning(
                "Could not queue customer email %s (%s): the run sends it", email.pk, exc
            )

    transaction.on_commit(send)


def _insert(row: CustomerEmail, already: str, same: dict) -> CustomerEmail:
    """Insert the row; if the same email (``same``: the unique constraint's fields) has
    a row already, take that one back only if it never reached the customer."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        again = _ask_again(row, same)
        if again is None:
            raise BillingError(already) from None
        return again
    return row


def _ask_again(row: CustomerEmail, same: dict) -> CustomerEmail | None:
    """An email that bounced, failed or was stopped is asked for again: its row goes
    back to the queue (compare-and-set on its final state, so two clicks revive it
    once), as a new message. This is how "correct the address, then send it again"
    and a chase stopped by a payment that later bounced work under the one-row rule."""
    revived = CustomerEmail.objects.filter(kind=row.kind, state__in=NEVER_REACHED, **same).update(
        state=row.state,
        sender=row.sender,
        approved_by=row.approved_by,
        to_address=row.to_address,
        next_attempt_at=row.next_attempt_at,
        message_id=new_message_id(),
        attempts=0,
        claimed_until=None,
        settled_at=None,
        sent_at=None,
        outcome="",
    )
    if not revived:
        return None
    return CustomerEmail.objects.get(kind=row.kind, **same)


@transaction.atomic
def invoice_email_request(
    *, invoice_id: int, send_on: date | None = None, now: datetime | None = None
) -> CustomerEmail:
    """Email the invoice (PDF attached) to the customer's billing contact, now or on a day.

    ``send_on`` schedules it for the morning of that day, so it arrives
    before the customer's accounting cut-off (seed 001, tip 1). Once per invoice.
    """
    now = now or timezone.now()
    invoice = Invoice.objects.select_related("deal__customer", "deal__rep").get(pk=invoice_id)
    refusal = email_refusal(invoice, EmailKind.INVOICE)
    if refusal:
        raise BillingError(refusal)
    when = now
    if send_on is not None and send_on > timezone.localdate(now):
        when = max(now, _morning(send_on, invoice.deal.rep.time_zone))
    row = _insert(
        _new_row(invoice, kind=EmailKind.INVOICE, next_attempt_at=when),
        f"Invoice {invoice} has already been emailed (or is about to be).",
        {"invoice": invoice},
    )
    if when <= now:
        _enqueue(row)
    return row


def _morning(day: date, time_zone: str) -> datetime:
    """REMINDERS_MORNING_HOUR on ``day`` in the rep's time zone."""
    zone = ZoneInfo(time_zone or settings.DEFAULT_USER_TIME_ZONE)
    return datetime.combine(day, time(settings.REMINDERS_MORNING_HOUR), tzinfo=zone)


@transaction.atomic
def chase_request(*, invoice_id: int, rung: int, sender: User) -> CustomerEmail:
    """Send one rung's payment reminder now, in the deal's rep's name; ``sender`` asked.

    The last rung goes only with a manager's approval: a rep's request waits
    for it (``awaiting_approval``); a manager of the deal's rep sends it at once.
    """
    invoice = Invoice.objects.select_related("deal__customer", "deal__rep").get(pk=invoice_id)
    _check_rung(invoice, rung)
    manager_sends = chase.is_last_rung(rung) and can_manage(sender)
    if manager_sends and not manages_rep(sender, invoice.deal.rep):
        raise NotAllowed("Only the rep's own manager approves the last reminder.")
    waits = chase.is_last_rung(rung) and not manager_sends
    row = _insert(
        _new_row(
            invoice,
            kind=EmailKind.CHASE,
            rung=rung,
            state=EmailState.AWAITING_APPROVAL if waits else EmailState.QUEUED,
            approved_by=sender if manager_sends else None,
        ),
        f"The {chase.rung_label(rung).lower()} reminder for invoice {invoice} was already sent "
        "or asked for.",
        {"invoice": invoice, "rung": rung},
    )
    if not waits:
        _enqueue(row)
    return row


def _check_rung(invoice: Invoice, rung: int, today: date | None = None) -> None:
    today = today or timezone.localdate()
    if rung not in chase.rungs():
        raise BillingError(f"Not a rung of the ladder: {rung}.")
    refusal = email_refusal(invoice, EmailKind.CHASE, today=today)
    if refusal:
        raise BillingError(refusal)
    reached = chase.current_rung(invoice.due_date, today)
    if reached is None or rung > reached:
        raise BillingError(
            f"This reminder is for {rung} days after the due date: not yet "
            f"({(today - invoice.due_date).days} days so far)."
        )


def chase_approve(*, email_id: int, manager: User) -> CustomerEmail:
    """A manager approves a last-rung reminder a rep asked for: it goes now."""
    with transaction.atomic():
        email = CustomerEmail.objects.select_related("invoice__deal__rep").get(pk=email_id)
        if not manages_rep(manager, email.invoice.deal.rep):
            raise NotAllowed("Only the rep's own manager approves the last reminder.")
        _check_rung(email.invoice, email.rung)
        approved = CustomerEmail.objects.filter(
            pk=email.pk, state=EmailState.AWAITING_APPROVAL
        ).update(state=EmailState.QUEUED, approved_by=manager, next_attempt_at=timezone.now())
        if not approved:
            raise BillingError("This reminder was already approved or is no longer waiting.")
        email.refresh_from_db()
        _enqueue(email)
    return email


def chase_queue_auto(*, today: date | None = None) -> int:
    """Queue the rungs managers set to go by themselves, for invoices that reached them.

    Only the rung an invoice is on today (an invoice found late skips the
    rungs it passed); never the last rung. Rows that exist already are
    skipped by the unique constraint (two beats insert nothing twice).
    """
    today = today or timezone.localdate()
    automatic = set(
        ChaseTemplate.objects.filter(auto_send=True)
        .exclude(rung=chase.last_rung())
        .values_list("manager_id", "rung")
    )
    if not automatic:
        return 0
    earliest_due = today - timedelta(days=chase.last_rung() - 1)
    invoices = (
        Invoice.objects.filter(
            voided_at__isnull=True, due_date__lte=today, due_date__gte=earliest_due
        )
        .exclude(deal__stage__in=[Stage.PAYMENT_CLEARED, Stage.LOST, Stage.WRITTEN_OFF])
        .filter(deal__customer__chase_by_email=True)
        .select_related("deal__customer", "deal__rep")
    )
    rows = []
    for invoice in invoices:
        rung = chase.current_rung(invoice.due_date, today)
        if rung is None or (team_manager_id(invoice.deal.rep), rung) not in automatic:
            continue
        if email_refusal(invoice, EmailKind.CHASE, today=today):
            continue
        rows.append(_new_row(invoice, kind=EmailKind.CHASE, rung=rung))
    created = CustomerEmail.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def chase_template_save(
    *, manager: User, rung: int, subject: str, body: str, auto_send: bool = False
) -> ChaseTemplate:
    """A manager's wording for one rung of their team's chase, and whether it goes by itself.

    The last rung never goes by itself: the manager approves each one.
    """
    if not can_manage(manager):
        raise NotAllowed("Only a manager edits the chase.")
    if rung not in chase.rungs():
        raise BillingError(f"Not a rung of the ladder: {rung}.")
    template, _ = ChaseTemplate.objects.update_or_create(
        manager=manager,
        rung=rung,
        defaults={
            "subject": subject,
            "body": body,
            "auto_send": auto_send and not chase.is_last_rung(rung),
            "updated_by": manager,
            "updated_at": timezone.now(),
        },
    )
    return template
