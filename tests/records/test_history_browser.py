"""The record of changes on the deal's page and the Activity page, in headless Chromium."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import log_in, open_menu
from tests.factories import DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "var/screenshots"


def test_a_manager_sees_who_changed_a_deals_amount_on_its_page_and_on_activity(
    page, live_server, rep, manager
):
    deal = DealFactory(rep=rep, title="Dental chairs")
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}/deals/{deal.pk}/edit/")
    page.get_by_label("Amount").fill("12600.00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("Deal saved")
    page.context.clear_cookies()

    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/deals/{deal.pk}/")
    change = page.locator(".timeline li.change-deal").first
    expect(change).to_contain_text("Riley")
    expect(change).to_contain_text("Amount")
    expect(change.locator("del")).to_have_text("1000.00")
    expect(change.locator("ins")).to_have_text("12600.00")
    page.screenshot(path=f"{SHOTS}/deal-timeline-change.png", full_page=True)

    open_menu(page, "Reports")
    page.get_by_role("link", name="Activity").click()
    expect(page.locator("#results")).to_contain_text("12600.00")
    page.get_by_label("Field").fill("amount")
    page.get_by_label("Type").select_option("deal")
    expect(page).to_have_url(re.compile(r"field=amount.*type=deal|type=deal.*field=amount"))
    expect(page.locator("#results")).to_contain_text("1 change")
    page.screenshot(path=f"{SHOTS}/activity.png", full_page=True)
