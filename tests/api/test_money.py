"""Payments and invoices through the API: billing's rules, as the pages apply them."""

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, Payment, PaymentStatus
from pipeline.stages import Stage
from receivables.pdf import pdf_unavailable
from tests.events import announced
from tests.factories import DealFactory, PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_deal(rep):
    return DealFactory(rep=rep, deposit_required=False, amount=Decimal("1000.00"))


def test_a_rep_records_a_payment_once_whatever_the_retries(rep_api, open_deal):
    data = {"kind": "final", "method": "check", "amount": "400.00", "reference": "Check 12"}
    with announced() as sent:
        first = rep_api.post(
            f"/deals/{open_deal.pk}/payments", data, headers={"Idempotency-Key": "pay-1"}
        )
        again = rep_api.post(
            f"/deals/{open_deal.pk}/payments", data, headers={"Idempotency-Key": "pay-1"}
        )
    assert first.status_code == again.status_code == 201, first.content
    assert first.json()["status"] == "pending" and first.json()["amount"] == "400.00"
    assert Payment.objects.count() == 1
    assert sent and sent[0][0] == open_deal.pk


def test_a_full_card_number_is_refused_next_to_its_field_and_never_stored(rep_api, open_deal):
    data = {"kind": "final", "method": "card", "amount": "10.00", "reference": "4111111111111111"}
    response = rep_api.post(f"/deals/{open_deal.pk}/payments", data)
    assert response.status_code == 422
    assert "reference" in response.json()["errors"]
    assert "4111111111111111" not in response.content.decode()
    assert not Payment.objects.exists()


def test_only_a_manager_of_the_team_clears_a_payment(
    rep_api, manager_api, other_manager_api, open_deal
):
    payment = PaymentFactory(deal=open_deal)
    url = f"/payments/{payment.pk}/status"
    assert rep_api.post(url, {"to_status": "cleared"}).status_code == 403
    assert other_manager_api.post(url, {"to_status": "cleared"}).status_code == 404
    cleared = manager_api.post(url, {"to_status": "cleared"})
    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["status"] == PaymentStatus.CLEARED
    open_deal.refresh_from_db()
    assert open_deal.cleared_amount == Decimal("200.00")


def test_a_bounce_needs_its_reason_as_the_page_says(manager_api, open_deal):
    payment = PaymentFactory(deal=open_deal)
    response = manager_api.post(f"/payments/{payment.pk}/status", {"to_status": "bounced"})
    assert response.status_code == 422
    assert response.json()["errors"]["reason"] == ["Say why: the reason goes on the ledger."]
    bounced = manager_api.post(
        f"/payments/{payment.pk}/status", {"to_status": "bounced", "reason": "NSF"}
    )
    assert bounced.json()["status"] == "bounced"


def test_the_payment_list_is_the_persons_own(rep_api, other_rep_api, manager_api, open_deal):
    payment = PaymentFactory(deal=open_deal)
    assert [p["id"] for p in rep_api.get("/payments").json()["items"]] == [payment.pk]
    assert [p["id"] for p in manager_api.get("/payments").json()["items"]] == [payment.pk]
    assert other_rep_api.get("/payments").json()["items"] == []


def test_an_invoice_is_issued_listed_and_downloaded(rep_api, other_rep_api, rep):
    deal = DealFactory(rep=rep, stage=Stage.AUDIT_CONFIRMED, deposit_required=False)
    response = rep_api.post(
        f"/deals/{deal.pk}/invoices",
        {"amount": "500.00", "issue_date": timezone.localdate().isoformat(), "terms_days": 30},
    )
    assert response.status_code == 201, response.content
    invoice = Invoice.objects.get()
    assert response.json()["number"] == invoice.display_number
    assert [i["id"] for i in rep_api.get("/invoices").json()["items"]] == [invoice.pk]
    assert other_rep_api.get(f"/invoices/{invoice.pk}/pdf").status_code == 404
    pdf = rep_api.get(f"/invoices/{invoice.pk}/pdf")
    if pdf_unavailable():
        assert pdf.status_code == 503
    else:
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")


def test_an_invoice_beyond_the_terms_is_refused_with_the_forms_message(rep_api, rep):
    deal = DealFactory(rep=rep, stage=Stage.AUDIT_CONFIRMED, deposit_required=False)
    response = rep_api.post(
        f"/deals/{deal.pk}/invoices",
        {"amount": "500.00", "issue_date": "2999-01-01", "terms_days": 900},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["issue_date"] == ["Issue it within the next month."]
    assert "terms_days" in errors
    assert not Invoice.objects.exists()
