"""Emails to customers in headless Chromium: the manager's live preview (htmx under
the strict CSP) and the rep's one click that emails an invoice."""

import datetime

import pytest
from django.db import transaction
from django.utils import timezone

from pipeline.stages import Stage
from receivables import sending
from receivables.models import ChaseTemplate, CustomerEmail, EmailState
from tests.browser import log_in
from tests.factories import DealFactory, InvoiceFactory
from tests.smtp import parts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_sees_the_email_change_while_typing(page, live_server, manager):
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/billing/chasing/")
    rung = page.locator("#rung-7")
    rung.get_by_label("Subject").fill("Overdue: {invoice_number} for {customer}")
    preview = page.locator("#preview-7")
    preview.get_by_text("Overdue: INV-00042 for Northwind Traders").wait_for()
    rung.get_by_label("Subject").fill("Overdue: {invoce_number}")
    page.locator("#preview-7 .field-error").wait_for()
    assert "Unknown placeholder {invoce_number}" in page.locator("#preview-7").inner_text()
    rung.get_by_label("Subject").fill("Overdue: {invoice_number}")
    rung.get_by_label("Send by itself when due").check()
    rung.get_by_role("button", name="Save").click()
    page.wait_for_selector(".flash-success")
    template = ChaseTemplate.objects.get(manager=manager, rung=7)
    assert (template.subject, template.auto_send) == ("Overdue: {invoice_number}", True)
    assert "goes by itself" in page.locator("#rung-7").inner_text()


def test_a_rep_emails_an_invoice_and_the_customer_gets_it(
    page, live_server, rep, customer, smtp_server
):
    customer.billing_email = "ap@whitfield.example"
    customer.save()
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    with transaction.atomic():  # the invoice number's sequence is locked
        invoice = InvoiceFactory(deal=deal, due_date=timezone.localdate() - datetime.timedelta(8))
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}{invoice.get_absolute_url()}")
    page.get_by_role("button", name="Email the invoice").click()
    page.wait_for_selector(".flash-success")
    assert sending.customer_emails_run() == 1  # the worker's run
    page.get_by_role("link", name="+7 days").click()
    page.get_by_role("button", name="Send this email").click()
    page.wait_for_selector("#chase-state")
    assert sending.customer_emails_run() == 1
    page.reload()
    assert "Sent" in page.locator("#chase-state").inner_text()
    subjects = [message["Subject"] for message in smtp_server.received()]
    assert subjects[0].startswith(f"Invoice {invoice.display_number}")
    assert "overdue" in subjects[1]
    pdfs = [parts(m)["attachments"] for m in smtp_server.received()]
    assert all(f"{invoice.display_number}.pdf" in names for names in pdfs)
    assert CustomerEmail.objects.filter(state=EmailState.SENT).count() == 2
