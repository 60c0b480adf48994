"""Emails to the customer (issue 14): the invoice's PDF, sending it, the polite chase.

Every email goes through a real SMTP server started by the test (tests/smtp.py)
and the tests read what it received.
"""

import datetime
import io
import os
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from billing import services as billing_services
from billing.services import BillingError
from pipeline.models import Customer, Touch, TouchKind
from pipeline.stages import AuditFlag, Stage
from receivables import chase, mail, pdf, selectors, sending
from receivables.models import ChaseTemplate, CustomerEmail, EmailKind, EmailState
from reminders import services as reminder_services
from reminders.models import Reminder, ReminderKind
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory
from tests.smtp import SmtpServer, parts

pytestmark = pytest.mark.django_db

CARD = "4111 1111 1111 1111"


def _today() -> datetime.date:
    return timezone.localdate()


@pytest.fixture
def billed(rep, customer):
    """A delivered invoice deal owing 1,000.00, its customer with a billing email."""
    customer.billing_email = "accounts@whitfield.example"
    customer.accounting_cutoff_day = 25
    customer.save()
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    return deal


def _invoice(deal, overdue_days: int | None = None):
    if overdue_days is None:
        return InvoiceFactory(deal=deal)
    return InvoiceFactory(deal=deal, due_date=_today() - datetime.timedelta(days=overdue_days))


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _send_all() -> list[str]:
    return [sending.customer_email_send(email_id=pk) for pk in sending.emails_due()]


# --- the PDF ---------------------------------------------------------------------------


def test_the_invoice_pdf_is_made_from_the_invoice_page(rep_client, billed):
    invoice = _invoice(billed)
    response = rep_client.get(reverse("billing:invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = _pdf_text(response.content)
    assert invoice.display_number in text
    assert "Whitfield Dental" in text
    assert "$1,000.00" in text
    assert "Email to the customer" not in text  # the page's screen-only panel is not printed


def test_without_pango_the_pdf_says_so_and_the_invoice_page_still_works(
    rep_client, billed, monkeypatch
):
    invoice = _invoice(billed)
    monkeypatch.setattr(pdf, "weasyprint", None)
    monkeypatch.setattr(pdf, "_UNAVAILABLE", "PDF is not available on this machine (no Pango).")
    response = rep_client.get(reverse("billing:invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 503
    assert "PDF is not available on this machine" in response.content.decode()
    page = rep_client.get(invoice.get_absolute_url())
    assert page.status_code == 200
    assert 'id="pdf-unavailable"' in page.content.decode()
    with pytest.raises(pdf.PdfUnavailable):
        mail.invoice_pdf(invoice)


def test_another_reps_invoice_pdf_is_not_found(other_rep_client, billed):
    invoice = _invoice(billed)
    assert (
        other_rep_client.get(reverse("billing:invoice_pdf", args=[invoice.pk])).status_code == 404
    )
    sent = other_rep_client.post(reverse("billing:invoice_send", args=[invoice.pk]))
    assert sent.status_code == 404
    assert not CustomerEmail.objects.exists()


# --- sending the invoice --------------------------------------------------------------


def test_a_rep_emails_the_invoice_with_one_click(rep, rep_client, billed, smtp_server):
    invoice = _invoice(billed)
    response = rep_client.post(reverse("billing:invoice_send", args=[invoice.pk]), {"send_on": ""})
    assert response.status_code == 302
    email = CustomerEmail.objects.get()
    assert (email.kind, email.state, email.to_address) == (
        EmailKind.INVOICE,
        EmailState.QUEUED,
        "accounts@whitfield.example",
    )

    assert _send_all() == [EmailState.SENT]

    (message,) = smtp_server.received()
    assert message["To"] == "accounts@whitfield.example"
    assert message["From"].addresses[0].display_name == str(rep)
    assert message["From"].addresses[0].addr_spec == "cleared@localhost"
    assert message["Reply-To"] == rep.email
    assert message["Message-ID"] == email.message_id
    assert invoice.display_number in message["Subject"]
    body = parts(message)
    assert "Please find attached invoice" in body["text"]
    assert "<strong>" + invoice.display_number + "</strong>" in body["html"]
    attachment = body["attachments"][f"{invoice.display_number}.pdf"]
    assert invoice.display_number in _pdf_text(attachment)
    # The customer's own page for this invoice, no login (receivables/links.py).
    link = re.search(r"View and respond online: (\S+)", body["text"]).group(1)
    assert link.startswith(f"{settings.CLEARED_SITE_URL}/billing/pay/")
    assert f'href="{link}"' in body["html"]
    page = Client().get(link.removeprefix(settings.CLEARED_SITE_URL))
    assert page.status_code == 200 and invoice.display_number in page.content.decode()

    email.refresh_from_db()
    assert email.state == EmailState.SENT and email.sent_at is not None
    touch = Touch.objects.get(deal=billed)
    assert touch.kind == TouchKind.EMAIL and touch.author == rep
    assert invoice.display_number in touch.discussed
    page = rep_client.get(invoice.get_absolute_url()).content.decode()
    assert "Invoice email: <strong>Sent</strong>" in page


def test_an_invoice_is_emailed_once(rep, billed, smtp_server):
    invoice = _invoice(billed)
    mail.invoice_email_request(invoice_id=invoice.pk)
    with pytest.raises(BillingError, match="already been emailed"):
        mail.invoice_email_request(invoice_id=invoice.pk)
    _send_all()
    _send_all()
    assert len(smtp_server.received()) == 1


def test_an_email_link_is_shown_only_when_given(rep, billed):
    invoice = _invoice(billed)
    content = mail.invoice_email_content(invoice, link_url="https://cleared.example/l/abc")
    assert "View and respond online: https://cleared.example/l/abc" in content["text"]
    assert 'href="https://cleared.example/l/abc"' in content["html"]
    wording = chase.default_wording(7)
    preview = mail.chase_preview(wording, mail.invoice_values(invoice), "https://x.example/l/1")
    assert "View and respond online" in preview["html"]


def test_the_invoice_can_be_scheduled_to_arrive_before_the_cutoff(rep, rep_client, billed):
    invoice = _invoice(billed)
    cutoff = billed.customer.accounting_cutoff_day
    billed.customer.accounting_cutoff_day = None
    billed.customer.save()
    day = _today() + datetime.timedelta(days=2)
    rep_client.post(reverse("billing:invoice_send", args=[invoice.pk]), {"send_on": day})
    email = CustomerEmail.objects.get()
    assert timezone.localdate(email.next_attempt_at) == day
    assert sending.emails_due() == []  # not before that morning
    later = email.next_attempt_at + datetime.timedelta(minutes=1)
    assert sending.emails_due(now=later) == [email.pk]
    assert cutoff == 25


def test_a_day_after_the_cutoff_is_refused_next_to_the_field(rep_client, billed):
    invoice = _invoice(billed)
    billed.customer.accounting_cutoff_day = (_today() + datetime.timedelta(days=1)).day
    billed.customer.save()
    day = _today() + datetime.timedelta(days=3)
    response = rep_client.post(reverse("billing:invoice_send", args=[invoice.pk]), {"send_on": day})
    assert response.status_code == 422
    assert "after the customer&#x27;s accounting cut-off" in response.content.decode()
    assert not CustomerEmail.objects.exists()


def test_a_customer_without_email_cannot_be_sent_the_invoice(rep, billed):
    Customer.objects.filter(pk=billed.customer_id).update(email="", billing_email="")
    invoice = _invoice(billed)
    with pytest.raises(BillingError, match="no email address"):
        mail.invoice_email_request(invoice_id=invoice.pk)


# --- the chase ------------------------------------------------------------------------


def test_the_rungs_follow_the_ladder_setting(settings):
    settings.REMINDERS_PAYMENT_LADDER_DAYS = ["7", "14", "30"]
    assert chase.rungs() == [0, 7, 14, 30]
    assert chase.is_last_rung(30) and not chase.is_last_rung(14)
    assert chase.current_rung(_today(), _today()) == 0
    assert chase.current_rung(_today() - datetime.timedelta(days=20), _today()) == 14
    assert chase.current_rung(_today() + datetime.timedelta(days=1), _today()) is None
    assert "friendly" in chase.default_wording(0).body
    assert "call" in chase.default_wording(14).body
    assert "Final" in chase.default_wording(30).subject


def test_placeholders_are_filled_and_nothing_else_is_evaluated():
    values = {"customer": "Acme", "amount_due": "$5.00"}
    assert chase.fill("{customer} owes {amount_due}", values) == "Acme owes $5.00"
    assert chase.fill("{customer.__class__} {other}", values) == "{customer.__class__} {other}"
    assert chase.unknown_placeholders("Hi {customer}, {nope}") == ["nope"]


def test_a_rep_previews_and_sends_a_rung_in_one_click(
    rep, manager, rep_client, billed, smtp_server
):
    invoice = _invoice(billed, overdue_days=8)
    ChaseTemplate.objects.create(
        manager=manager,
        rung=7,
        subject="Still open: {invoice_number}",
        body="Dear {customer}, {amount_due} is {days_overdue} days late. {rep_name}",
    )
    url = reverse("billing:chase", args=[invoice.pk, 7])
    page = rep_client.get(url).content.decode()
    assert f"Still open: {invoice.display_number}" in page
    assert "Dear Whitfield Dental, $1,000.00 is 8 days late." in page
    assert rep_client.post(url).status_code == 302
    assert _send_all() == [EmailState.SENT]
    (message,) = smtp_server.received()
    assert message["Subject"] == f"Still open: {invoice.display_number}"
    body = parts(message)
    assert f"is 8 days late. {rep}" in body["text"]
    assert f"{invoice.display_number}.pdf" in body["attachments"]
    assert Touch.objects.filter(deal=billed, discussed__contains="+7 days").exists()
    # The same rung never goes twice.
    rep_client.post(url)
    assert CustomerEmail.objects.count() == 1
    assert "This reminder: <strong>Sent</strong>" in rep_client.get(url).content.decode()


def test_a_rung_not_reached_yet_is_refused(rep, billed):
    invoice = _invoice(billed, overdue_days=3)
    with pytest.raises(BillingError, match="not yet"):
        mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)


@pytest.mark.parametrize(
    "situation, message",
    [
        ("disputed", "disputed"),
        ("lost", "lost"),
        ("written_off", "written off"),
        ("paid", "paid"),
        ("pending", "pending"),
        ("do_not_chase", "do not chase"),
    ],
)
def test_nothing_is_chased_when_it_must_not_be(rep, manager, billed, situation, message):
    invoice = _invoice(billed, overdue_days=8)
    if situation == "disputed":
        type(billed).objects.filter(pk=billed.pk).update(
            stage=Stage.DEPOSIT, audit_flag=AuditFlag.DISPUTED, audit_flag_at=timezone.now()
        )
    elif situation in ("lost", "written_off"):
        type(billed).objects.filter(pk=billed.pk).update(
            stage=situation, lost_reason="other" if situation == "lost" else ""
        )
    elif situation == "paid":
        PaymentFactory(deal=billed, invoice=invoice, amount=invoice.amount, status="cleared")
    elif situation == "pending":
        PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("100.00"))
    else:
        Customer.objects.filter(pk=billed.customer_id).update(chase_by_email=False)
    with pytest.raises(BillingError, match=message):
        mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    assert not CustomerEmail.objects.exists()


def test_money_recorded_after_the_click_stops_the_chase_at_send_time(rep, billed, smtp_server):
    invoice = _invoice(billed, overdue_days=8)
    email = mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("300.00"))  # a check arrives
    assert sending.customer_email_send(email_id=email.pk) == EmailState.CANCELLED
    email.refresh_from_db()
    assert "pending" in email.outcome
    assert smtp_server.received() == []


def test_the_last_rung_waits_for_the_managers_approval(
    rep, manager, rep_client, manager_client, billed, smtp_server
):
    invoice = _invoice(billed, overdue_days=31)
    url = reverse("billing:chase", args=[invoice.pk, 30])
    assert "Ask my manager to approve" in rep_client.get(url).content.decode()
    rep_client.post(url)
    email = CustomerEmail.objects.get()
    assert email.state == EmailState.AWAITING_APPROVAL
    assert _send_all() == []
    chasing = manager_client.get(reverse("billing:chasing")).content.decode()
    assert "Waiting for your approval" in chasing
    assert "Approve and send" in manager_client.get(url).content.decode()
    manager_client.post(url)
    email.refresh_from_db()
    assert email.approved_by == manager and email.sender == rep
    assert _send_all() == [EmailState.SENT]
    (message,) = smtp_server.received()
    assert message["Subject"].startswith("Final reminder")
    assert message["From"].addresses[0].display_name == str(rep)


def test_another_teams_manager_cannot_approve(rep, billed, other_rep):
    invoice = _invoice(billed, overdue_days=31)
    email = mail.chase_request(invoice_id=invoice.pk, rung=30, sender=rep)
    with pytest.raises(BillingError):
        mail.chase_approve(email_id=email.pk, manager=other_rep.manager)


def test_a_rung_set_to_go_by_itself_goes_once(rep, manager, billed, smtp_server):
    invoice = _invoice(billed, overdue_days=8)
    mail.chase_template_save(
        manager=manager, rung=7, subject="S {invoice_number}", body="B", auto_send=True
    )
    late = _invoice(DealFactory(rep=rep, customer=billed.customer, stage=Stage.DELIVERED), 20)
    assert sending.customer_emails_run() == 1
    assert sending.customer_emails_run() == 0  # the next beat: nothing twice
    (message,) = smtp_server.received()
    assert message["Subject"] == f"S {invoice.display_number}"
    assert not CustomerEmail.objects.filter(invoice=late).exists()  # on +14: manual


def test_the_last_rung_never_goes_by_itself(manager):
    template = mail.chase_template_save(
        manager=manager, rung=30, subject="S", body="B", auto_send=True
    )
    assert template.auto_send is False


# --- a refusing mail server, a bounce -----------------------------------------------------


def test_a_busy_mail_server_is_retried_with_back_off(rep, billed, smtp_server):
    invoice = _invoice(billed)
    email = mail.invoice_email_request(invoice_id=invoice.pk)
    smtp_server.busy = True
    assert sending.customer_email_send(email_id=email.pk) == EmailState.QUEUED
    email.refresh_from_db()
    assert email.attempts == 1 and "451" in email.outcome
    assert email.next_attempt_at > timezone.now()
    assert sending.emails_due() == []
    smtp_server.busy = False
    later = email.next_attempt_at + datetime.timedelta(seconds=1)
    assert sending.customer_email_send(email_id=email.pk, now=later) == EmailState.SENT
    assert len(smtp_server.received()) == 1


def test_a_refused_connection_is_retried_then_given_up(rep, billed, settings):
    settings.MAILERS = SmtpServer().mailers  # nothing listens on that port
    settings.CLEARED_EMAIL_MAX_ATTEMPTS = 2
    invoice = _invoice(billed)
    email = mail.invoice_email_request(invoice_id=invoice.pk)
    assert sending.customer_email_send(email_id=email.pk) == EmailState.QUEUED
    email.refresh_from_db()
    assert "ConnectionRefusedError" in email.outcome
    later = email.next_attempt_at + datetime.timedelta(seconds=1)
    assert sending.customer_email_send(email_id=email.pk, now=later) == EmailState.FAILED


def test_a_permanent_bounce_marks_the_address_and_tells_the_rep(
    rep, rep_client, billed, smtp_server
):
    smtp_server.bouncing.add("accounts@whitfield.example")
    invoice = _invoice(billed)
    email = mail.invoice_email_request(invoice_id=invoice.pk)
    assert sending.customer_email_send(email_id=email.pk) == EmailState.BOUNCED
    customer = Customer.objects.get(pk=billed.customer_id)
    assert customer.billing_email_bounced_at is not None
    with pytest.raises(BillingError, match="bounced"):
        mail.chase_request(invoice_id=_invoice(billed, overdue_days=1).pk, rung=0, sender=rep)

    reminder_services.reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.EMAIL_BOUNCED)
    assert reminder.owner == rep and reminder.occurrence == f"e{email.pk}"
    assert "accounts@whitfield.example" in reminder.why

    # A corrected address answers the reminder.
    response = rep_client.post(
        reverse("customer_edit", args=[customer.pk]),
        {
            "name": customer.name,
            "company": customer.company,
            "phone": customer.phone,
            "email": customer.email,
            "billing_email": "ap@whitfield.example",
            "chase_by_email": "on",
        },
    )
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).billing_email_bounced_at is None
    reminder_services.reminders_scan()
    reminder.refresh_from_db()
    assert not reminder.is_open


def test_after_a_bounce_and_a_corrected_address_the_invoice_goes_again(
    rep, rep_client, billed, smtp_server
):
    """The bounced-email reminder says "correct the address, then send it again": the
    one row of the invoice's email goes back to the queue, as a new message."""
    smtp_server.bouncing.add("accounts@whitfield.example")
    invoice = _invoice(billed)
    bounced = mail.invoice_email_request(invoice_id=invoice.pk)
    assert sending.customer_email_send(email_id=bounced.pk) == EmailState.BOUNCED
    page = rep_client.get(invoice.get_absolute_url()).content.decode()
    assert "Invoice email: <strong>Bounced</strong>" in page
    assert "Email the invoice</button>" not in page  # the address still bounces
    Customer.objects.filter(pk=billed.customer_id).update(
        billing_email="ap@whitfield.example", billing_email_bounced_at=None
    )
    page = rep_client.get(invoice.get_absolute_url()).content.decode()
    assert "Email the invoice</button>" in page
    rep_client.post(reverse("billing:invoice_send", args=[invoice.pk]), {"send_on": ""})
    assert _send_all() == [EmailState.SENT]
    (message,) = smtp_server.received()
    assert message["To"] == "ap@whitfield.example"
    email = CustomerEmail.objects.get()
    assert (email.pk, email.state, email.attempts) == (bounced.pk, EmailState.SENT, 1)
    assert message["Message-ID"] == email.message_id != bounced.message_id
    with pytest.raises(BillingError, match="already been emailed"):
        mail.invoice_email_request(invoice_id=invoice.pk)  # sent: never twice


def test_a_chase_stopped_by_a_payment_that_bounced_can_be_sent_again(
    rep, manager, rep_client, billed, smtp_server
):
    invoice = _invoice(billed, overdue_days=8)
    email = mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    payment = PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("300.00"))
    assert sending.customer_email_send(email_id=email.pk) == EmailState.CANCELLED
    url = reverse("billing:chase", args=[invoice.pk, 7])
    page = rep_client.get(url).content.decode()
    assert "A payment is pending" in page and "Send this email" not in page
    billing_services.payment_bounce(payment_id=payment.pk, actor=manager, reason="Returned")
    page = rep_client.get(url).content.decode()
    assert "<strong>Not sent</strong>" in page and "Send this email" in page
    assert "clears or bounces.\n" in page  # one full stop after the reason
    rep_client.post(url)
    rep_client.post(url)  # a double click: the row is queued once
    assert _send_all() == [EmailState.SENT]
    (message,) = smtp_server.received()
    assert message["Subject"] == f"Invoice {invoice.display_number} is 8 days overdue"
    assert CustomerEmail.objects.get().state == EmailState.SENT
    assert "Send this email" not in rep_client.get(url).content.decode()


# --- never a card number; always escaped ------------------------------------------------------


@pytest.mark.stores_card_numbers
def test_no_full_card_number_leaves_in_an_email_or_a_pdf(rep, billed, smtp_server):
    invoice = _invoice(billed, overdue_days=8)
    # Planted past the masked fields, as an old row or a raw import could hold it.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pipeline_deal SET title = %s WHERE id = %s", [f"Card {CARD} on file", billed.pk]
        )
        cursor.execute(
            "UPDATE pipeline_customer SET company = %s WHERE id = %s",
            [f"Whitfield {CARD}", billed.customer_id],
        )
    mail.invoice_email_request(invoice_id=invoice.pk)
    mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    _send_all()
    assert len(smtp_server.received()) == 2
    digits = CARD.replace(" ", "")
    for message in smtp_server.received():
        raw = message.as_bytes()
        body = parts(message)
        for text in (raw.decode(errors="replace"), body["text"], body["html"], message["Subject"]):
            assert CARD not in text and digits not in text
        pdf_text = _pdf_text(body["attachments"][f"{invoice.display_number}.pdf"])
        assert digits not in pdf_text.replace(" ", "")
        assert "1111" in pdf_text  # the masked form is there: the field was rendered


def test_a_customer_named_script_is_text_everywhere(rep, rep_client, billed, smtp_server):
    Customer.objects.filter(pk=billed.customer_id).update(company="<script>alert(1)</script>")
    invoice = _invoice(billed, overdue_days=8)
    mail.invoice_email_request(invoice_id=invoice.pk)
    mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    _send_all()
    for message in smtp_server.received():
        html = parts(message)["html"]
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = rep_client.get(reverse("billing:chase", args=[invoice.pk, 7])).content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- the Chasing page ---------------------------------------------------------------------


def test_the_chasing_page_is_for_managers(rep_client, manager_client):
    assert rep_client.get(reverse("billing:chasing")).status_code == 403
    assert manager_client.get(reverse("billing:chasing")).status_code == 200


def test_a_manager_edits_a_rung_with_a_live_preview(manager, manager_client):
    preview = manager_client.post(
        reverse("billing:chasing_preview", args=[7]),
        {"r7-subject": "Hi {customer}", "r7-body": "You owe {amount_due}."},
        HTTP_HX_REQUEST="true",
    )
    content = preview.content.decode()
    assert "Hi Northwind Traders" in content and "You owe $1,250.00." in content
    assert "<html" not in content  # the partial only

    bad = manager_client.post(
        reverse("billing:chasing_save", args=[7]),
        {"r7-subject": "Hi {customr}", "r7-body": "Body"},
    )
    assert bad.status_code == 422
    assert "Unknown placeholder {customr}" in bad.content.decode()
    assert "Hi {customr}" in bad.content.decode()  # what was typed is kept
    assert not ChaseTemplate.objects.exists()

    saved = manager_client.post(
        reverse("billing:chasing_save", args=[7]),
        {"r7-subject": "Hi {customer}", "r7-body": "Body", "r7-auto_send": "on"},
    )
    assert saved.status_code == 302
    template = ChaseTemplate.objects.get(manager=manager, rung=7)
    assert (template.subject, template.auto_send) == ("Hi {customer}", True)


def test_the_chasing_page_shows_recent_emails_and_the_chase_effect(
    rep, manager, manager_client, billed, smtp_server, django_assert_max_num_queries
):
    invoice = _invoice(billed, overdue_days=8)
    email = mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    _send_all()
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("400.00"), status="cleared")
    for _ in range(3):  # more emails: the page's query count does not grow with them
        other = _invoice(DealFactory(rep=rep, customer=billed.customer, stage=Stage.DELIVERED), 1)
        mail.chase_request(invoice_id=other.pk, rung=0, sender=rep)
    _send_all()
    with django_assert_max_num_queries(16):
        response = manager_client.get(reverse("billing:chasing"))
    content = response.content.decode()
    assert response.status_code == 200
    email.refresh_from_db()
    assert email.state == EmailState.SENT
    # 400 of the 1,000 owed on the +7 chase came in within the week; the three
    # due-today chases (1,000 each) brought nothing yet: 400 of 4,000.
    assert '<strong id="chase-share">10%</strong>' in content
    assert 'width="40"' in content  # the +7 rung's bar
    assert content.count("Payment reminder ·") == 4


def _effect(rep) -> dict:
    """The chase's effect over the rep's chases of the last month."""
    return selectors.chase_effect([rep], since=timezone.now() - datetime.timedelta(days=30))


def _refund(payment, manager, amount: str):
    return billing_services.payment_refund(
        payment_id=payment.pk, actor=manager, amount=Decimal(amount), reason="Returned one unit"
    )


def test_a_refund_given_before_the_chase_is_owed_again_when_it_goes(
    rep, manager, billed, smtp_server
):
    invoice = _invoice(billed, overdue_days=8)
    paid = PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("600.00"), status="cleared")
    refund = _refund(paid, manager, "250.00")
    email = mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    _send_all()
    email.refresh_from_db()
    assert refund.at < email.sent_at
    effect = _effect(rep)
    # 1,000 less the 600 cleared left 400 owed; the 250 given back is owed again.
    assert effect["total"].owed == Decimal("650.00")
    assert [rung.owed for rung in effect["rungs"]] == [Decimal("650.00")]


def test_a_refund_given_after_the_chase_leaves_what_was_owed_when_it_went(
    rep, manager, billed, smtp_server
):
    invoice = _invoice(billed, overdue_days=8)
    paid = PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("600.00"), status="cleared")
    mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    _send_all()
    assert _effect(rep)["total"].owed == Decimal("400.00")
    _refund(paid, manager, "250.00")
    assert invoice.cleared_money() == Decimal("350.00")  # owed again from now on
    assert _effect(rep)["total"].owed == Decimal("400.00")


def test_the_chase_effect_is_two_queries_however_many_chases_and_refunds(
    rep, manager, billed, smtp_server, django_assert_num_queries
):
    for _ in range(3):
        deal = DealFactory(
            rep=rep, customer=billed.customer, deposit_required=False, stage=Stage.DELIVERED
        )
        invoice = _invoice(deal, overdue_days=8)
        paid = PaymentFactory(
            deal=deal, invoice=invoice, amount=Decimal("600.00"), status="cleared"
        )
        _refund(paid, manager, "100.00")
        mail.chase_request(invoice_id=invoice.pk, rung=7, sender=rep)
    _send_all()
    with django_assert_num_queries(2):
        effect = _effect(rep)
    assert (effect["total"].emails, effect["total"].owed) == (3, Decimal("1500.00"))


def test_a_payment_reminder_links_to_its_chase_page(rep, billed):
    invoice = _invoice(billed, overdue_days=8)
    reminder = Reminder(
        deal=billed, kind=ReminderKind.PAYMENT_OVERDUE, occurrence=f"i{invoice.pk}+7"
    )
    assert reminder.chase_url == reverse("billing:chase", args=[invoice.pk, 7])
    reminder.occurrence = f"i{invoice.pk}+30/manager"
    assert reminder.chase_url == reverse("billing:chase", args=[invoice.pk, 30])
    reminder.occurrence = "n3+7"  # an instalment: no invoice to email
    assert reminder.chase_url == ""
    assert settings.REMINDERS_PAYMENT_LADDER_DAYS


def test_a_passed_promise_offers_to_email_the_customer_again(rep, rep_client, billed):
    """ "Chase again": the reminder opens the chase the invoice has reached today."""
    invoice = _invoice(billed, overdue_days=8)
    promised = timezone.localdate() - datetime.timedelta(days=2)
    Reminder.objects.create(
        deal=billed,
        kind=ReminderKind.PROMISE_PASSED,
        occurrence=f"i{invoice.pk}@{promised.isoformat()}",
        owner=rep,
        state="due",
        why="They promised to pay: chase again.",
        due_at=timezone.now() - datetime.timedelta(hours=1),
    )
    home = rep_client.get("/").content.decode()
    chase_now = reverse("billing:chase_now", args=[invoice.pk])
    assert f'<a href="{chase_now}" class="open-deal chase-email"' in home
    response = rep_client.get(chase_now)
    assert response["Location"] == reverse("billing:chase", args=[invoice.pk, 7])  # due now


def test_the_app_starts_and_says_so_on_a_machine_without_pango(tmp_path):
    """WeasyPrint fails to import without Pango (OSError): Cleared starts anyway."""
    fake = tmp_path / "weasyprint"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise OSError(\"cannot load library 'libpango-1.0-0': no such file\")\n"
    )
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        "django.setup(); from django.core.management import call_command; "
        # The checks that need no database (the customers' generated match keys ask
        # the server's version: a database, not Pango, would be what that tests).
        "call_command('check', databases=[]); import billing.urls; "
        "from receivables.pdf import pdf_unavailable; "
        "print(pdf_unavailable())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "PDF is not available on this machine" in result.stdout
    assert "libpango-1.0-0" in result.stdout


def test_a_manager_sends_a_reps_invoice_in_the_reps_name(rep, manager_client, billed, smtp_server):
    invoice = _invoice(billed)
    manager_client.post(reverse("billing:invoice_send", args=[invoice.pk]), {"send_on": ""})
    _send_all()
    (message,) = smtp_server.received()
    assert message["From"].addresses[0].display_name == str(rep)
    assert message["Reply-To"] == rep.email
    assert Touch.objects.get(deal=billed).author == rep


def test_the_reminder_panel_offers_to_email_the_customer(rep, rep_client, billed):
    invoice = _invoice(billed, overdue_days=8)
    Reminder.objects.create(
        deal=billed,
        kind=ReminderKind.PAYMENT_OVERDUE,
        occurrence=f"i{invoice.pk}+7",
        owner=rep,
        state="due",
        why="Invoice overdue: ask for the money.",
        due_at=timezone.now() - datetime.timedelta(hours=1),
    )
    home = rep_client.get("/").content.decode()
    chase_url = reverse("billing:chase", args=[invoice.pk, 7])
    assert f'<a href="{chase_url}" class="open-deal chase-email">Email the customer</a>' in home


@pytest.mark.needs_postgres(
    "a second writer waits on the row lock; the bare run's in-memory SQLite "
    "refuses it at once (database table is locked)"
)
@pytest.mark.django_db(transaction=True)
def test_a_slow_sender_whose_lease_ran_out_is_not_doubled(rep, billed, smtp_server, settings):
    """A worker still sending when its lease ends keeps the row locked: the run that
    would take the lease over waits for it, then finds the email sent."""
    settings.CLEARED_EMAIL_LEASE_SECONDS = 1
    with transaction.atomic():
        invoice = _invoice(billed)
    email = mail.invoice_email_request(invoice_id=invoice.pk)
    smtp_server.hold_seconds = 3
    outcome = {}

    def slow_worker():
        try:
            outcome["slow"] = sending.customer_email_send(email_id=email.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=slow_worker)
    worker.start()
    deadline = time.monotonic() + 10
    while smtp_server.rcpt_attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.2)  # the slow worker's lease has run out
    smtp_server.hold_seconds = 0
    assert sending.customer_email_send(email_id=email.pk) == ""  # waited, then found it sent
    worker.join(10)
    assert outcome["slow"] == EmailState.SENT
    assert len(smtp_server.received()) == 1
    email.refresh_from_db()
    assert (email.state, email.attempts) == (EmailState.SENT, 1)
