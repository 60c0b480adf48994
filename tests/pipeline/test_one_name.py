"""One name for one thing (issue 13): terms wording that does not contradict
itself, invoice numbers named alike, payment ids where the processor needs them."""

from decimal import Decimal

import pytest
from django.test import override_settings

from billing import services as billing
from billing.models import invoice_display_number
from pipeline.models import Customer
from pipeline.stages import Stage
from pipeline.terms import Standing, terms_for
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


@override_settings(CLEARED_DEPOSIT="20%")
def test_a_good_payers_terms_do_not_call_a_deposit_required():
    terms = terms_for(Standing.GOOD, "3 deals paid on time.")
    assert "deposit is optional" in terms.summary
    assert "required" not in terms.deposit_text.replace("no deposit is required", "")
    assert "no deposit is required" in terms.deposit_text


@override_settings(CLEARED_DEPOSIT="20%")
def test_a_new_customers_terms_name_the_deposit_rule():
    terms = terms_for(Standing.NEW)
    assert "a deposit of 20% of the amount is required" in terms.deposit_text


def test_a_slow_payers_terms_name_only_the_allowed_options():
    terms = terms_for(Standing.SLOW)
    assert terms.deposit_text.startswith("Upfront or on file")
    assert "invoice" not in terms.deposit_text.lower()


def test_the_deal_forms_terms_panel_for_a_good_customer_reads_one_way(rep_client, customer):
    Customer.objects.filter(pk=customer.pk).update(standing="good")
    html = rep_client.get(f"/deals/terms/?customer={customer.pk}", headers={"HX-Request": "true"})
    text = html.text
    assert "a deposit is optional" in text
    assert "A required deposit is" not in text and "no deposit is required" in text


@override_settings(CLEARED_INVOICE_PREFIX="INV-")
def test_invoice_numbers_read_alike():
    assert invoice_display_number(9) == "INV-00009"


def test_payment_ids_are_on_the_payments_list_and_the_deals_ledger(manager_client, rep_client, rep):
    deal = DealFactory(rep=rep, stage=Stage.DELIVERED, deposit_required=False)
    payment = billing.payment_record(
        deal_id=deal.pk, recorded_by=rep, kind="final", method="check", amount=Decimal("50.00")
    )
    listed = manager_client.get("/billing/payments/").text
    assert f"Payment id <code>{payment.pk}</code>" in listed
    ledger = rep_client.get(deal.get_absolute_url()).text
    assert f"Payment id <code>{payment.pk}</code>" in ledger
