"""Small things that mislead (issue 20, section 6): voiding from the invoice page,
"Sent" only once an email left, the statement PDF's currency, a charge-back
named as such, words a customer understands, the invitation's lifetime, the
board's "as of"."""

import datetime
import io
from decimal import Decimal

import pytest
from django.core import mail as outbox
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from billing.models import CreditNote, InvoiceState
from pipeline import enrollment, team
from pipeline.models import StageEvent
from pipeline.stages import Stage
from receivables import mail, sending
from receivables.forms import PaidForm
from receivables.models import EmailState
from tests.conftest import _client_for
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(rep, customer):
    customer.billing_email = "accounts@whitfield.test"
    customer.save()
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DELIVERED, deposit_required=False)
    return InvoiceFactory(
        deal=deal,
        amount=Decimal("800.00"),
        due_date=timezone.localdate() + datetime.timedelta(days=20),
    )


# --- voiding from the invoice page --------------------------------------------------


def test_a_rep_cannot_void_an_invoice(rep_client, invoice):
    url = reverse("billing:invoice_void", args=[invoice.pk])
    assert rep_client.post(url, {"reason": "typo"}).status_code == 403
    assert not CreditNote.objects.exists()


def test_a_manager_of_another_team_cannot_see_it(other_rep, invoice):
    other_manager_client = _client_for(other_rep.manager)
    url = reverse("billing:invoice_void", args=[invoice.pk])
    assert other_manager_client.post(url, {"reason": "typo"}).status_code == 404


def test_a_void_without_a_reason_comes_back_with_the_message(manager_client, invoice):
    url = reverse("billing:invoice_void", args=[invoice.pk])
    response = manager_client.post(url, {"reason": ""})
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    invoice.refresh_from_db()
    assert not invoice.is_void


def test_voiding_cancels_the_waiting_emails_and_issues_a_credit_note(manager_client, invoice):
    email = mail.invoice_email_request(
        invoice_id=invoice.pk, send_on=timezone.localdate() + datetime.timedelta(days=3)
    )
    url = reverse("billing:invoice_void", args=[invoice.pk])
    response = manager_client.post(url, {"reason": "Wrong company"})
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.state == EmailState.CANCELLED
    assert email.outcome == "Not sent: the invoice was voided (credit note CN-00001)."
    page = manager_client.get(invoice.get_absolute_url()).content.decode()
    assert "CN-00001" in page
    assert "Wrong company" in page
    statement = manager_client.get(
        reverse("billing:customer_statement", args=[invoice.deal.customer_id])
    ).content.decode()
    assert "CN-00001" in statement


# --- "Email the invoice" ---------------------------------------------------------------


def test_the_send_date_starts_empty_and_the_invoice_is_not_sent_yet(rep_client, invoice):
    invoice.deal.customer.accounting_cutoff_day = 28
    invoice.deal.customer.save()
    page = rep_client.get(invoice.get_absolute_url()).content.decode()
    assert 'name="send_on"' in page
    assert 'name="send_on" value=' not in page  # nothing prefilled: empty is now
    assert "Issued, not sent" in page


def test_the_invoice_reads_sent_once_its_email_left(invoice):
    email = mail.invoice_email_request(invoice_id=invoice.pk)
    assert invoice.state_for(None) == InvoiceState.ISSUED
    assert sending.customer_email_send(email_id=email.pk) == EmailState.SENT
    invoice.refresh_from_db()
    assert invoice.emailed_at is not None
    assert invoice.state_for(None) == InvoiceState.SENT


# --- statement PDF, charge-back, customer words, invitation -----------------------------


def test_the_statement_pdf_says_total_due_in_its_currency(rep_client, invoice):
    response = rep_client.get(
        reverse("billing:customer_statement_pdf", args=[invoice.deal.customer_id])
    )
    assert response.status_code == 200
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Total due (USD)" in text
    assert "Total due ()" not in text


def test_a_charge_back_is_named_on_the_timeline(rep, customer):
    deal = DealFactory(
        rep=rep, customer=customer, stage=Stage.DELIVERED, deposit_required=False,
        amount=Decimal("200.00"),
    )  # fmt: skip
    PaymentFactory(deal=deal, amount=Decimal("200.00"), status="charged_back")
    back = StageEvent.objects.filter(deal=deal, to_stage=Stage.DELIVERED).latest("id")
    assert back.reason == "A payment was charged back: the balance is open again."


def test_a_card_number_on_the_customers_link_is_refused_in_their_words():
    form = PaidForm(data={"reference": "4111 1111 1111 1111"})
    assert not form.is_valid()
    message = " ".join(form.errors["reference"])
    assert "payment processor" not in message
    assert "your bank" in message


def test_the_invitation_says_how_long_its_link_works(
    manager, settings, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_TIMEOUT = 3 * 3600
    with django_capture_on_commit_callbacks(execute=True):
        team.team_invite(manager=manager, email="new.rep@example.test")
    assert "the link works once, for 3 hours" in outbox.outbox[-1].body
    settings.PASSWORD_RESET_TIMEOUT = 2 * 86400
    assert enrollment.link_lifetime() == "2 days"


def test_the_team_page_says_the_same_lifetime(manager_client, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3 * 3600
    page = manager_client.get(reverse("team")).content.decode()
    assert 'id="invite-lifetime">3 hours<' in page
