"""The customer's link in headless Chromium: the rep makes it, the customer (no login)
promises a date, the rep sees the answer on the deal; and the pages look right at
1280 and 375 px (screenshots in CLEARED_SHOTS_DIR when it is set)."""

import datetime
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from pipeline.stages import Stage
from receivables import links
from receivables.models import CustomerLink, CustomerResponse
from tests.browser import log_in
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory, PaymentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("CLEARED_SHOTS_DIR")


WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map((e) => e.tagName + "." + e.className).slice(0, 5)"""


def _shot(page, name: str, *, phone_fits: bool = True) -> None:
    """At 1280 and 375 px wide: nothing wider than a phone's screen (the customer's
    pages), and screenshots, full page, when CLEARED_SHOTS_DIR is set."""
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        if phone_fits:
            assert page.evaluate(WIDER_THAN_THE_SCREEN) == [], (name, width)
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _days(n: int) -> datetime.date:
    # The customer's page counts days in the site's zone (nobody is signed in
    # there), whatever zone an earlier signed-in request left this thread in.
    return timezone.localdate(timezone=timezone.get_default_timezone()) + datetime.timedelta(days=n)


@pytest.fixture(autouse=True)
def _pay_to(settings):
    settings.CLEARED_PAY_TO_NAME = "Bright Smiles Supply Ltd"
    settings.CLEARED_PAY_TO_BANK = "Barclays Bank"
    settings.CLEARED_PAY_TO_IBAN = "GB33 BUKB 2020 1555 5555 55"
    settings.CLEARED_PAY_TO_BIC = "BUKBGB22"
    settings.CLEARED_PAY_TO_NOTE = "Transfers usually reach us in one working day."


@pytest.fixture
def billed(rep, customer):
    deal = DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        stage=Stage.DELIVERED,
        title="Two dental chairs, installed",
        amount=Decimal("8450.00"),
    )
    with transaction.atomic():  # the invoice number's sequence row is locked
        InvoiceFactory(deal=deal, amount=Decimal("8450.00"), due_date=_days(-6))
    return deal


def test_the_rep_makes_a_link_the_customer_promises_and_the_rep_sees_it(
    page, browser, live_server, rep, billed
):
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}{billed.get_absolute_url()}")
    panel = page.locator("#customer-links")
    panel.get_by_role("button", name="Make a link").click()
    page.wait_for_selector(".flash-success")
    url = page.locator("#customer-links input[data-select-all]").first.input_value()
    assert url.startswith("http") and "/billing/pay/" in url
    path = url.split("/billing/pay/", 1)[1]
    _shot(page, "deal-links-panel", phone_fits=False)

    customer = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    try:
        them = customer.new_page()
        them.goto(f"{live_server.url}/billing/pay/{path}")
        assert "$8,450.00" in them.locator(".summary").inner_text()
        assert "6 days ago" in them.locator(".summary").inner_text()
        _shot(them, "customer-link-invoice")
        day = _days(4)
        them.get_by_label("I'll pay on").fill(day.isoformat())
        them.get_by_role("button", name="Promise this date").click()
        them.wait_for_selector(".done")
        assert "your date is noted" in them.locator(".done").inner_text()
        _shot(them, "customer-link-thanks")
        assert customer.cookies() == []  # no session, no CSRF cookie
    finally:
        customer.close()

    assert CustomerResponse.objects.get().promised_for == day
    page.goto(f"{live_server.url}{billed.get_absolute_url()}")
    timeline = page.locator(".timeline").inner_text()
    assert "Customer's own answer" in timeline
    assert "From the customer, through their payment link" in timeline
    assert "Promises to pay on" in page.locator("#customer-links").inner_text()


def test_the_customer_sees_their_statement_and_a_refused_date_keeps_its_message(
    page, live_server, rep, customer, billed
):
    second = DealFactory(rep=rep, customer=customer, deposit_required=False, title="Sterilizer")
    with transaction.atomic():
        invoice = InvoiceFactory(deal=second, amount=Decimal("1200.00"), due_date=_days(9))
        PaymentFactory(deal=second, invoice=invoice, amount=Decimal("400.00"), status="cleared")
    link = links.customer_link_create(customer=customer, created_by=rep)
    page.goto(f"{live_server.url}{links.customer_link_path(link)}")
    assert "$9,250.00" in page.locator(".summary").inner_text()
    _shot(page, "customer-link-statement")
    far = _days(90).isoformat()
    page.get_by_label("I'll pay on").fill(far)
    page.get_by_role("button", name="Promise this date").click()
    assert "Please pick a day by" in page.locator("#promise .field-error").inner_text()
    assert page.get_by_label("I'll pay on").input_value() == far
    assert not CustomerResponse.objects.exists()


def test_the_statement_and_dso_pages_render_for_staff(page, live_server, rep, manager, billed):
    CustomerFactory(owner=rep, name="<script>alert(1)</script>")
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/billing/customers/{billed.customer_id}/statement/")
    assert "$8,450.00" in page.locator(".statement").inner_text()
    _shot(page, "statement")
    page.goto(f"{live_server.url}/billing/dso/")
    assert "Days sales outstanding" in page.locator("h1").inner_text()
    assert page.locator("svg.chart rect.bar").count() >= 1
    _shot(page, "dso-report", phone_fits=False)
    page.goto(f"{live_server.url}{billed.customer.get_absolute_url()}")
    _shot(page, "customer-links-panel", phone_fits=False)
    page.goto(f"{live_server.url}/billing/pay/not-a-token/")
    assert "This link does not work" in page.locator("h1").inner_text()
    _shot(page, "customer-link-gone")
    assert CustomerLink.objects.count() == 0
