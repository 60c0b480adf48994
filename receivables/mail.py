"""Emails to the customer: the invoice with its PDF, and the polite chase (issue 14).

Every email is a ``CustomerEmail`` row first (recorded exactly once, held by
unique constraints), then sent by the Celery worker (at least once):

1. ``invoice_email_request`` / ``chase_request`` (a rep's click) and
   ``chase_queue_auto`` (the beat, for rungs a manager set to go by
   themselves) insert the row; the last rung of the chase waits for a
   manager (``chase_approve``).
2. ``customer_email_send`` claims the row by compare-and-set (``queued`` →
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
import smtplib
import string
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from email.utils import formataddr, parseaddr
from zoneinfo import ZoneInfo

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format

from billing.models import Invoice, PaymentStatus
from billing.services import BillingError, NotAllowed
from pipeline.access import can_manage, manages_rep
from pipeline.events import deal_changed_on_commit
from pipeline.masking import mask_card_numbers
from pipeline.models import Customer, Deal, TouchKind, User
from pipeline.services import touch_record
from pipeline.stages import Stage
from pipeline.templatetags.cleared import money
from pipeline.terms import ZERO
from receivables import chase, links
from receivables.models import NEVER_REACHED, ChaseTemplate, CustomerEmail, EmailKind, EmailState
from receivables.pdf import PdfUnavailable, render_pdf

logger = logging.getLogger(__name__)


# --- may it go? -------------------------------------------------------------------


def invoice_cleared(invoice: Invoice) -> Decimal:
    return invoice.payments.filter(status=PaymentStatus.CLEARED).aggregate(
        total=Coalesce(Sum("amount"), ZERO)
    )["total"]


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
    if deal.stage == Stage.PAYMENT_CLEARED or invoice_cleared(invoice) >= invoice.amount:
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
        "amount_due": money(invoice.amount - invoice_cleared(invoice)),
        "due_date": date_format(invoice.due_date, "j F Y"),
        "days_overdue": str(max((today - invoice.due_date).days, 0)),
        "rep_name": str(deal.rep),
    }


def chase_preview(
    wording: chase.Wording, values: dict[str, str], link_url: str | None = None
) -> dict:
    """Subject, plain text and HTML of a chase email (what the preview and the send show)."""
    subject = chase.fill(wording.subject, values).replace("\n", " ").strip()
    body = chase.fill(wording.body, values)
    context = {"subject": subject, "body": body, "link_url": link_url}
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
    invoice.cleared = sum((payment.amount for payment in payments), ZERO)
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


def invoice_email_content(invoice: Invoice, link_url: str | None = None) -> dict:
    values = invoice_values(invoice)
    context = {
        **invoice_document(invoice),
        "values": values,
        "rep": invoice.deal.rep,
        "link_url": link_url,
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
    return formataddr((str(rep), address))


def build_message(email: CustomerEmail, link_url: str | None = None) -> EmailMultiAlternatives:
    """The email of a row: HTML and plain text, the invoice's PDF attached."""
    invoice = email.invoice
    rep = email.sender or invoice.deal.rep
    if email.kind == EmailKind.CHASE:
        wording = chase_wording(team_manager_id(invoice.deal.rep), email.rung, days_late(invoice))
        content = chase_preview(wording, invoice_values(invoice), link_url)
    else:
        content = invoice_email_content(invoice, link_url)
    message = EmailMultiAlternatives(
        subject=content["subject"],
        body=content["text"],
        from_email=_from_in_the_name_of(rep),
        to=[email.to_address],
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


# --- sending (the worker) ----------------------------------------------------------------


def emails_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Queued emails whose time has come, and claims whose worker died."""
    now = now or timezone.now()
    return list(
        CustomerEmail.objects.filter(
            Q(state=EmailState.QUEUED, next_attempt_at__lte=now)
            | Q(state=EmailState.SENDING, claimed_until__lt=now)
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def _claim(email_id: int, now: datetime) -> datetime | None:
    """Compare-and-set: only one worker moves a row to ``sending`` (or takes over a
    dead worker's lapsed lease). Returns the lease's end, the claim's token; None if
    another worker has the row (or it is not due)."""
    until = now + timedelta(seconds=settings.CLEARED_EMAIL_LEASE_SECONDS)
    claimed = (
        CustomerEmail.objects.filter(pk=email_id)
        .filter(
            Q(state=EmailState.QUEUED, next_attempt_at__lte=now)
            | Q(state=EmailState.SENDING, claimed_until__lt=now)
        )
        .update(state=EmailState.SENDING, claimed_until=until, attempts=F("attempts") + 1)
    )
    return until if claimed else None


def _still_ours(email_id: int, until: datetime) -> bool:
    """Lock the claimed row for the send: a lease that lapses while this worker is
    alive and sending cannot be taken over (the taker's claim waits for this
    transaction, then finds the row sent)."""
    return bool(
        list(
            CustomerEmail.objects.select_for_update()
            .filter(pk=email_id, state=EmailState.SENDING, claimed_until=until)
            .values_list("pk", flat=True)
        )
    )


def _settle(email_id: int, **fields) -> None:
    if fields.get("state") != EmailState.QUEUED:
        fields["settled_at"] = timezone.now()
    CustomerEmail.objects.filter(pk=email_id, state=EmailState.SENDING).update(
        claimed_until=None, **fields
    )


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _permanent_refusal(exc: smtplib.SMTPRecipientsRefused) -> str | None:
    codes = [code for code, _ in exc.recipients.values()]
    if codes and all(500 <= code < 600 for code in codes):
        return "; ".join(
            f"{address}: {code} {_text(reply)}" for address, (code, reply) in exc.recipients.items()
        )[:300]
    return None


def customer_email_send(*, email_id: int, now: datetime | None = None) -> str:
    """Send one claimed email; return the row's state afterwards ("" if not claimed).

    The deal is locked (the lock ``billing.services.payment_record`` takes
    first) while the email is checked again and sent: a payment recorded
    meanwhile either waits for this send or stops it.
    """
    now = now or timezone.now()
    until = _claim(email_id, now)
    if until is None:
        return ""
    email = CustomerEmail.objects.select_related(
        "invoice__deal__customer", "invoice__deal__rep", "sender"
    ).get(pk=email_id)
    with transaction.atomic():
        # Locks in a fixed order: the deal (as payment_record does), then the email.
        deal = (
            Deal.objects.select_for_update(of=("self",))
            .select_related("customer", "rep")
            .get(pk=email.invoice.deal_id)
        )
        if not _still_ours(email.pk, until):
            return ""
        email.invoice.deal = deal
        refusal = email_refusal(email.invoice, email.kind, deal=deal, today=timezone.localdate(now))
        if refusal:
            _settle(email.pk, state=EmailState.CANCELLED, outcome=refusal)
            return EmailState.CANCELLED
        email.to_address = deal.customer.billing_address
        # The customer's own page for this invoice (billing/links.py): signed,
        # expiring, revocable; the newest live one is reused, not one per email.
        link = links.customer_link_for_email(
            customer=deal.customer, invoice=email.invoice, created_by=email.sender or deal.rep
        )
        try:
            message = build_message(email, links.customer_link_url(link))
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            permanent = _permanent_refusal(exc)
            if permanent:
                return _bounced(email, permanent, now)
            return _retry(email, exc, now)
        except (smtplib.SMTPException, OSError) as exc:
            return _retry(email, exc, now)
        _settle(
            email.pk,
            state=EmailState.SENT,
            sent_at=timezone.now(),
            subject=message.subject[:300],
            to_address=email.to_address,
            outcome="",
        )
        # The invoice reads "Sent" from the first email that left, not from its issue.
        Invoice.objects.filter(pk=email.invoice_id, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        _record_touch(email, deal)
    return EmailState.SENT


def _retry(email: CustomerEmail, exc: Exception, now: datetime) -> str:
    attempts = email.attempts
    error = f"{exc.__class__.__name__}: {exc}"[:300]
    if attempts >= settings.CLEARED_EMAIL_MAX_ATTEMPTS:
        _settle(email.pk, state=EmailState.FAILED, outcome=error)
        logger.error("Customer email %s failed %s times: %s", email.pk, attempts, error)
        return EmailState.FAILED
    backoff = timedelta(seconds=min(60 * 2 ** (attempts - 1), 3600))
    _settle(email.pk, state=EmailState.QUEUED, next_attempt_at=now + backoff, outcome=error)
    logger.warning("Customer email %s refused (%s); retry in %s", email.pk, error, backoff)
    return EmailState.QUEUED


def _bounced(email: CustomerEmail, reply: str, now: datetime) -> str:
    """The address is refused for good: marked on the customer; the rep's reminder reads the row."""
    _settle(email.pk, state=EmailState.BOUNCED, outcome=reply)
    Customer.objects.filter(pk=email.customer_id).update(billing_email_bounced_at=now)
    deal_changed_on_commit(deal_id=email.invoice.deal_id, actor_id=None)
    return EmailState.BOUNCED


def _record_touch(email: CustomerEmail, deal: Deal) -> None:
    """Each sending is a touch on the deal's timeline (DOMAIN.md, Touches).

    The deal's own next step is kept: an email asks, it agrees nothing yet.
    """
    invoice = email.invoice
    if email.kind == EmailKind.CHASE:
        what = f"Payment reminder ({chase.rung_label(email.rung).lower()}) for invoice {invoice}"
    else:
        what = f"Invoice {invoice} with its PDF"
    touch_record(
        deal=deal,
        author=email.sender or deal.rep,
        kind=TouchKind.EMAIL,
        discussed=f"{what} emailed to {email.to_address} by Cleared.",
        agreed_to="Nothing yet: an email, awaiting their reply or payment.",
        next_step=deal.next_step,
        next_step_date=deal.next_step_date,
    )


def customer_emails_run(*, now: datetime | None = None) -> int:
    """The beat's run: queue automatic rungs, then send every email whose time has come."""
    chase_queue_auto(today=timezone.localdate(now))
    sent = 0
    # Read after queueing: the rows just queued are due at once.
    for email_id in emails_due(now=now or timezone.now()):
        if customer_email_send(email_id=email_id) == EmailState.SENT:
            sent += 1
    return sent


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
