"""Issue 20, section 6, in headless Chromium: a manager voids an invoice from its page
with a reason (a credit note in its own series, the queued email not sent, the
statement shows the credit note); a rep finds a deal by its invoice number from
the nav's search box. Screenshots in CLEARED_SHOTS_DIR when it is set."""

import datetime
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import CreditNote
from pipeline.stages import Stage
from receivables import mail
from receivables.models import EmailState
from tests.browser import log_in
from tests.factories import DealFactory, InvoiceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("CLEARED_SHOTS_DIR")


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


@pytest.fixture
def invoice(rep, customer):
    customer.billing_email = "accounts@whitfield.test"
    customer.save()
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DELIVERED, amount=Decimal("2400.00"))
    return InvoiceFactory(
        deal=deal,
        amount=Decimal("2400.00"),
        due_date=timezone.localdate() + datetime.timedelta(days=20),
    )


def test_a_manager_voids_an_invoice_with_a_reason_and_a_credit_note(
    page, live_server, manager, invoice
):
    # The invoice email is scheduled for a later morning: still waiting.
    email = mail.invoice_email_request(
        invoice_id=invoice.pk, send_on=timezone.localdate() + datetime.timedelta(days=2)
    )
    log_in(page, live_server, manager.username)
    page.goto(f"{live_server.url}{invoice.get_absolute_url()}")
    page.get_by_text("Void this invoice…").click()
    _shot(page, "invoice-void-form")
    page.get_by_role("button", name="Void the invoice").click()
    # No reason: refused next to the field, nothing voided.
    assert page.locator("#invoice-void .field-error, #invoice-void [role=alert]").count() >= 1
    assert not CreditNote.objects.exists()
    page.get_by_label("Reason").fill("Billed to the wrong company")
    page.get_by_role("button", name="Void the invoice").click()
    page.wait_for_selector("#credit-note-number")
    assert page.locator("#credit-note-number").inner_text() == "CN-00001"
    assert "Billed to the wrong company" in page.locator("#void-note").inner_text()
    row = page.locator(f"#email-{email.pk}")
    assert "Not sent" in row.inner_text()
    assert "voided (credit note CN-00001)" in row.inner_text()
    email.refresh_from_db()
    assert email.state == EmailState.CANCELLED
    assert page.locator("#invoice-void").count() == 0  # no second void
    _shot(page, "invoice-voided")
    page.goto(f"{live_server.url}/billing/customers/{invoice.deal.customer_id}/statement/")
    credit = page.locator(".statement-credit-notes")
    assert "CN-00001" in credit.inner_text()
    assert invoice.display_number in credit.inner_text()
    _shot(page, "statement-credit-note")


def test_a_rep_sees_no_void_button(page, live_server, rep, invoice):
    log_in(page, live_server, rep.username)
    page.goto(f"{live_server.url}{invoice.get_absolute_url()}")
    page.wait_for_selector("#invoice-email")
    assert page.locator("#invoice-void").count() == 0
    # "Email the invoice": the send date is empty (now), and the invoice is not "Sent" yet.
    assert page.locator("#id_send_on").input_value() == ""
    assert "issued, not sent" in page.locator("main.invoice header").inner_text().lower()
    _shot(page, "invoice-rep")


def test_the_nav_search_finds_a_deal_by_its_invoice_number(page, live_server, rep, invoice):
    log_in(page, live_server, rep.username)
    page.locator("#nav-q").fill(invoice.display_number)
    page.locator("#nav-q").press("Enter")
    page.wait_for_selector("#search-deals")
    assert invoice.display_number in page.locator("#search-invoices").inner_text()
    page.locator("#search-deals a").first.click()
    page.wait_for_url(f"{live_server.url}{invoice.deal.get_absolute_url()}")
    page.goto(f"{live_server.url}/search/?q={invoice.display_number}")
    _shot(page, "search-invoice")
