"""The duplicate warning while typing and the merge, in headless Chromium (issue 20, §3)."""

import pytest
from playwright.sync_api import expect

from pipeline.models import Customer
from pipeline.sameness import CustomerMerge
from tests.browser import log_in
from tests.factories import CustomerFactory, DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "var/screenshots"


def _slow_dana(rep):
    dana = CustomerFactory(
        owner=rep, name="Dana Whitfield", company="Whitfield Dental", phone="555 300 0001"
    )
    Customer.objects.filter(pk=dana.pk).update(standing="slow", standing_reason="Pays late.")
    return dana


def test_a_match_shows_as_the_rep_types_in_the_deal_form_and_can_be_used(
    page, live_server, rep, teammate
):
    dana = _slow_dana(rep)
    teammate.set_password("pw")
    teammate.save()
    DealFactory(rep=teammate, customer=dana)  # the teammate sells to Dana too: may see her
    log_in(page, live_server, "rep2")
    page.goto(f"{live_server.url}/deals/new/")
    page.get_by_role("button", name="Add a new customer").click()
    box = page.locator("#new-customer")
    box.get_by_label("Phone").fill("(555) 300-0001")
    box.get_by_label("Phone").blur()
    warning = box.locator("#customer-matches")
    expect(warning).to_contain_text("Dana Whitfield (Whitfield Dental), Slow payer, owned by Riley")
    page.screenshot(path=f"{SHOTS}/duplicate-warning-deal-form.png", full_page=True)
    box.get_by_role("button", name="Use Dana Whitfield").click()
    expect(page.locator("#terms")).to_contain_text("Slow standing")
    assert page.get_by_label("Customer").input_value() == str(dana.pk)
    assert Customer.objects.count() == 1


def test_a_rep_who_may_not_see_the_match_is_told_their_manager_decides(
    page, live_server, rep, other_rep
):
    _slow_dana(rep)
    other_rep.set_password("pw")
    other_rep.save()
    log_in(page, live_server, "other_rep")
    page.goto(f"{live_server.url}/customers/new/")
    page.get_by_label("Email", exact=True).fill("nobody@example.com")
    page.get_by_label("Name", exact=True).fill("Dana Whitfield")
    page.get_by_label("Company").fill("Whitfield Dental")
    page.get_by_label("Company").blur()
    warning = page.locator("#customer-matches")
    expect(warning).to_contain_text("A matching customer already exists")
    expect(warning).to_contain_text("Your manager decides")
    expect(warning).not_to_contain_text("Riley")
    expect(warning).not_to_contain_text("Slow")
    page.screenshot(path=f"{SHOTS}/duplicate-warning-hidden.png", full_page=True)
    # Added anyway (submit, then confirm): the copy is no better than Dana.
    page.get_by_label("Phone").fill("555 999 0000")
    page.get_by_role("button", name="Add customer").click()
    page.get_by_role("button", name="No, it's a different customer: add it").click()
    expect(page.locator("h1")).to_have_text("Dana Whitfield")
    expect(page.locator(".terms-panel")).to_contain_text("Slow standing")


def test_a_manager_merges_a_likely_duplicate_from_the_customers_list(
    page, live_server, rep, teammate, manager
):
    dana = _slow_dana(rep)
    copy = CustomerFactory(owner=teammate, name="Dana Whitfield", company="", phone="555 300 0001")
    deal = DealFactory(rep=teammate, customer=copy, title="Copy's deal")
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/customers/")
    page.screenshot(path=f"{SHOTS}/customers-likely-duplicate.png", full_page=True)
    page.locator(f'a.merge-offer[href="/customers/{dana.pk}/merge/{copy.pk}/"]').click()
    expect(page.locator("h1")).to_have_text("Merge two customers")
    page.screenshot(path=f"{SHOTS}/customer-merge.png", full_page=True)
    page.get_by_label("Why (optional)").fill("Same phone, added twice")
    page.get_by_role(
        "button", name=f"Merge Dana Whitfield (#{copy.pk}) into Dana Whitfield (#{dana.pk})"
    ).click()
    expect(page.locator(".flash-success")).to_contain_text("merged into Dana Whitfield")
    expect(page.locator(".customer-history")).to_contain_text("Merged Dana Whitfield")
    expect(page.get_by_role("link", name=f"#{deal.pk} Copy's deal")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/customer-after-merge.png", full_page=True)
    assert not Customer.objects.filter(pk=copy.pk).exists()
    assert CustomerMerge.objects.get(survivor=dana).reason == "Same phone, added twice"
