"""A rep changes an audited deal's amount and asks their manager; the manager
approves from the reminder; the deal's timeline says who, when, from, to, why
and who approved (issue 20, section 1), in headless Chromium."""

from decimal import Decimal

import pytest

from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms_history import TermsChange, TermsChangeState
from reminders.services import reminders_scan
from tests.browser import log_in
from tests.factories import DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rep_asks_to_change_an_audited_amount_and_the_manager_approves_it(
    browser, live_server, rep, manager, customer, tmp_path
):
    shots = tmp_path / "shot"
    deal = DealFactory(
        rep=rep,
        customer=customer,
        title="Dental chairs",
        amount=Decimal("9600.00"),
        stage=Stage.AUDIT_CONFIRMED,
        deposit_required=False,
    )
    rep_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(rep_page, live_server, "rep")
    rep_page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    rep_page.get_by_role("button", name="Edit").click()
    frozen = rep_page.locator("#terms-frozen")
    assert "the audit confirmed them with the customer" in frozen.inner_text()
    rep_page.get_by_label("Amount").fill("12600.00")
    # The consequence is said before saving.
    ask = rep_page.get_by_label("Ask my manager", exact=False)
    assert "nothing changes until your manager approves" in frozen.inner_text()
    ask.check()
    rep_page.get_by_label("Why do the terms change?").fill("They added a second surgery")
    rep_page.screenshot(path=f"{shots}-edit.png", full_page=True)
    rep_page.get_by_role("button", name="Save").click()
    rep_page.wait_for_url(f"{live_server.url}{deal.get_absolute_url()}")
    rep_page.screenshot(path=f"{shots}-asked.png", full_page=True)
    assert "Your manager is asked" in rep_page.content()
    assert Deal.objects.get(pk=deal.pk).amount == Decimal("9600.00")
    rep_page.context.close()

    reminders_scan()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, live_server, "manager")
    item = page.locator(".reminder", has_text="Terms change asked")
    assert "9,600.00 → 12,600.00" in item.inner_text()
    assert "They added a second surgery" in item.inner_text()
    page.screenshot(path=f"{shots}-reminder.png", full_page=True)
    item.get_by_role("button", name="Approve the change").click()
    page.wait_for_load_state()
    assert "approved: the new terms apply" in page.content()
    assert Deal.objects.get(pk=deal.pk).amount == Decimal("12600.00")
    assert TermsChange.objects.get(deal=deal).state == TermsChangeState.APPROVED

    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    entry = page.locator(".timeline li.terms").first
    text = entry.inner_text()
    assert str(rep) in text  # who
    assert "Amount: 9,600.00 → 12,600.00" in text  # from, to
    assert "They added a second surgery" in text  # why
    assert f"Approved by {manager}" in text  # approved by
    assert any(
        month in text
        for month in (
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        )
    )  # when
    page.screenshot(path=f"{shots}-timeline.png", full_page=True)
    page.context.close()
