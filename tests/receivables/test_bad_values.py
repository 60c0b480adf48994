"""One bad value never stops the customer emails (issue 19).

A line break in a customer's company, in a rep's name (the From header) or in
a chase subject is cleaned where the header is built (``pipeline.text.single_line``)
and, for the subject, where a manager types it. An email that still cannot go
fails alone: the run sends the others, the row ends ``failed`` (never stuck in
``sending``) and its rep gets a reminder. Every email goes to a real SMTP server
(tests/smtp.py).
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from pipeline.models import Customer
from pipeline.stages import Stage
from receivables import mail, sending
from receivables.models import ChaseTemplate, CustomerEmail, EmailState
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_evaluate
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def _billed(rep, company: str, address: str):
    customer = CustomerFactory(owner=rep, company=company, billing_email=address)
    return DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)


def _overdue_invoice(deal, days: int = 7):
    return InvoiceFactory(deal=deal, due_date=timezone.localdate() - datetime.timedelta(days=days))


def test_line_breaks_in_a_company_a_reps_name_and_a_chase_subject_never_stop_an_email(
    rep, manager, smtp_server
):
    rep.first_name = "Dana\rBcc: someone@else.example"
    rep.save()
    deal = _billed(rep, "Acme\rInc", "accounts@acme.example")
    # Saved through the service, not the form: the header is cleaned where it is built too.
    mail.chase_template_save(
        manager=manager,
        rung=7,
        subject="Invoice {invoice_number}\nfor {customer}",
        body="Hello {customer}, invoice {invoice_number} is {days_overdue} days late.",
    )
    mail.invoice_email_request(invoice_id=InvoiceFactory(deal=deal).pk)
    mail.chase_request(invoice_id=_overdue_invoice(deal).pk, rung=7, sender=rep)

    assert sending.customer_emails_run() == 2
    assert set(CustomerEmail.objects.values_list("state", flat=True)) == {EmailState.SENT}
    received = smtp_server.received()
    assert len(received) == 2
    cleaned_name = f"Dana Bcc: someone@else.example {rep.last_name}"  # one line: no Bcc header
    for message in received:
        assert message["From"].addresses[0].display_name == cleaned_name
        assert [str(a.addr_spec) for a in message["To"].addresses] == ["accounts@acme.example"]
        assert message["Bcc"] is None
    chase = next(m for m in received if "for Acme Inc" in m["Subject"])
    assert "\n" not in chase["Subject"] and "\r" not in chase["Subject"]


def test_a_chase_subject_is_saved_on_one_line(manager_client, manager):
    response = manager_client.post(
        reverse("billing:chasing_save", args=[7]),
        {"r7-subject": "Invoice {invoice_number}\r\nis late", "r7-body": "Hello {customer}."},
    )
    assert response.status_code == 302
    assert ChaseTemplate.objects.get(manager=manager, rung=7).subject == (
        "Invoice {invoice_number} is late"
    )


def test_an_email_that_cannot_be_sent_fails_alone_and_its_rep_is_told(rep, smtp_server):
    deals = [_billed(rep, f"Customer {n}", f"accounts{n}@customer{n}.example") for n in range(3)]
    emails = [mail.invoice_email_request(invoice_id=InvoiceFactory(deal=deal).pk) for deal in deals]
    # A row no email can carry (written by an older import): its Message-ID breaks a line.
    broken = emails[0]
    CustomerEmail.objects.filter(pk=broken.pk).update(message_id="<abc\r\nBcc: x@y.example>")

    assert sending.customer_emails_run() == 2  # the run went on to the others
    assert len(smtp_server.received()) == 2
    broken.refresh_from_db()
    assert broken.state == EmailState.FAILED  # not stuck in "sending"
    assert broken.claimed_until is None and broken.attempts == 1
    assert broken.outcome.startswith("Could not be sent")
    assert sending.emails_due() == []  # and it is not sent again and again

    reminders_evaluate([deals[0].pk])
    reminder = Reminder.objects.get(deal=deals[0], kind=ReminderKind.EMAIL_BOUNCED)
    assert reminder.occurrence == f"f{broken.pk}"
    assert reminder.owner == rep and reminder.state == ReminderState.DUE
    assert "could not be sent" in reminder.why
    assert not Reminder.objects.filter(deal__in=deals[1:], kind=ReminderKind.EMAIL_BOUNCED)

    # Asked for again once the cause is fixed, it goes, and the reminder is resolved.
    CustomerEmail.objects.filter(pk=broken.pk).update(message_id=mail.new_message_id())
    mail.invoice_email_request(invoice_id=broken.invoice_id)
    assert sending.customer_emails_run() == 1
    reminders_evaluate([deals[0].pk])
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.RESOLVED
    assert Customer.objects.get(pk=deals[0].customer_id).billing_email_bounced_at is None
