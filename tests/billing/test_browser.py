"""Money as people handle it: in headless Chromium, through the real pages."""

from decimal import Decimal

import pytest

from billing.models import Payment, PaymentStatus
from pipeline.models import Deal
from pipeline.stages import Stage
from tests.billing.money import clear, record
from tests.browser import log_in
from tests.factories import DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _money(page) -> str:
    return page.locator("#money-panel").inner_text()


def test_a_rep_logs_a_deposit_and_the_deal_moves_to_deposit(page, live_server, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, amount=Decimal("2500.00"))
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    assert "not in yet" in _money(page)

    page.get_by_role("button", name="Record a payment").click()
    form = page.locator("#money-action")
    form.get_by_label("Amount").fill("5000")  # more than the deal: refused in place
    form.get_by_label("Method").select_option("check")
    form.get_by_label("Reference").fill("Check 4417")
    form.get_by_role("button", name="Record the payment").click()
    assert "overpayment" in page.locator("#money-action .field-error").inner_text()
    assert page.locator("#money-action").get_by_label("Reference").input_value() == "Check 4417"

    page.locator("#money-action").get_by_label("Amount").fill("500.00")
    page.locator("#money-action").get_by_role("button", name="Record the payment").click()
    page.wait_for_selector(".flash-success")
    page.wait_for_load_state("networkidle")
    panel = _money(page)
    assert "Paid, pending\n$500.00" in panel.replace("\t", "\n")
    assert "Check 4417" in panel
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT
    assert "Deposit" in page.locator(".page-head .badge").first.inner_text()
    assert page.get_by_role("button", name="Mark cleared").count() == 0  # reps never clear


def test_a_manager_clears_a_check_and_the_deal_is_paid(page, live_server, rep, manager, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    payment = record(deal, rep, "1000.00", kind="final", reference="Check 9001")
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/billing/payments/")
    row = page.locator("tr", has_text="Check 9001")
    row.get_by_role("button", name="Mark cleared").click()
    page.wait_for_selector(".flash-success:has-text('The deal is in Payment cleared')")
    page.wait_for_load_state("networkidle")
    assert "$0.00" in _money(page).split("Outstanding")[1][:20]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLEARED
    assert Deal.objects.get(pk=deal.pk).stage == Stage.PAYMENT_CLEARED


def test_a_bounce_reopens_the_balance(page, live_server, rep, manager, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    payment = clear(record(deal, rep, "1000.00", kind="final", reference="Check 9002"), manager)
    assert Deal.objects.get(pk=deal.pk).stage == Stage.PAYMENT_CLEARED
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    page.locator(f"#payment-{payment.pk}").get_by_role("link", name="Bounce…").click()
    form = page.locator("#money-action")
    form.get_by_role("button", name="Save").click()  # no reason: refused next to the field
    assert "Say why" in page.locator("#money-action .field-error").inner_text()
    page.locator("#money-action").get_by_label("Reason").fill("Returned: insufficient funds")
    page.locator("#money-action").get_by_role("button", name="Save").click()
    page.wait_for_selector(".flash-success:has-text('The deal is in Delivered')")
    page.wait_for_load_state("networkidle")
    panel = _money(page)
    assert "Bounced" in panel and "$1,000.00" in panel.split("Outstanding")[1][:30]
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.BOUNCED
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DELIVERED
    assert page.get_by_role("button", name="Record a payment").count() == 1
