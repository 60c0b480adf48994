"""Sending the customer emails: the worker's side of ``receivables.mail``.

``customer_emails_run`` (the beat, every minute) queues the automatic chase
rungs and sends every email whose time has come, one at a time, each on its
own: ``customer_email_send`` claims the row by compare-and-set (``queued`` →
``sending`` with a lease), locks the deal, checks again that it may go, sends,
and records a touch. A refusing mail server puts the row back with a back-off;
a permanent refusal of the address marks it ``bounced``. An email that cannot
be built or sent for any other reason fails alone: the row ends ``failed``
(at once for a value no email can carry, after the back-off otherwise), the
rep is told by a reminder (reminders/rules/receivables.py), and the run goes on
to the next email.
"""

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import Invoice
from pipeline.events import deal_changed_on_commit
from pipeline.history import history_record_update
from pipeline.models import Customer, Deal, TouchKind
from pipeline.services import touch_record
from receivables import chase, links
from receivables.mail import build_message, chase_queue_auto, email_refusal
from receivables.models import CustomerEmail, EmailKind, EmailState

logger = logging.getLogger(__name__)


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
    meanwhile either waits for this send or stops it. Whatever goes wrong with
    this one email stays with it: the row is backed off or failed, never left
    ``sending`` (``_send_claimed``'s own refusals aside, any error is caught).
    """
    now = now or timezone.now()
    until = _claim(email_id, now)
    if until is None:
        return ""
    try:
        return _send_claimed(email_id, until, now)
    except Exception as exc:  # one email's failure never stops the others
        logger.exception("Customer email %s could not be sent", email_id)
        return _retry(CustomerEmail.objects.get(pk=email_id), exc, now)


def _send_claimed(email_id: int, until: datetime, now: datetime) -> str:
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
        # The customer's own page for this invoice (receivables/links.py): signed,
        # expiring, revocable; the newest live one is reused, not one per email.
        link = links.customer_link_for_email(
            customer=deal.customer, invoice=email.invoice, created_by=email.sender or deal.rep
        )
        try:
            message = build_message(
                email, links.customer_link_url(link), links.pay_now_url(link, email.invoice)
            )
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            permanent = _permanent_refusal(exc)
            if permanent:
                return _bounced(email, permanent, now)
            return _retry(email, exc, now)
        except (smtplib.SMTPException, OSError) as exc:
            return _retry(email, exc, now)
        except ValueError as exc:
            # A value no email can carry (a header the email package refuses):
            # sending it again cannot help. The rep corrects it and asks again.
            return _failed(email, f"Could not be sent: {exc}")
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
        logger.error("Customer email %s failed %s times: %s", email.pk, attempts, error)
        return _failed(email, error)
    backoff = timedelta(seconds=min(60 * 2 ** (attempts - 1), 3600))
    _settle(email.pk, state=EmailState.QUEUED, next_attempt_at=now + backoff, outcome=error)
    logger.warning("Customer email %s refused (%s); retry in %s", email.pk, error, backoff)
    return EmailState.QUEUED


def _failed(email: CustomerEmail, outcome: str) -> str:
    """The email will not go: the row ends ``failed`` with why, and its deal's
    reminders hear of it at once (the rep's "email not sent" reminder)."""
    _settle(email.pk, state=EmailState.FAILED, outcome=outcome[:300])
    if email.deal_id:
        deal_changed_on_commit(deal_id=email.deal_id, actor_id=None)
    return EmailState.FAILED


def _bounced(email: CustomerEmail, reply: str, now: datetime) -> str:
    """The address is refused for good: marked on the customer; the rep's reminder reads the row."""
    _settle(email.pk, state=EmailState.BOUNCED, outcome=reply)
    Customer.objects.filter(pk=email.customer_id).update(billing_email_bounced_at=now)
    history_record_update(Customer, [email.customer_id])
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
