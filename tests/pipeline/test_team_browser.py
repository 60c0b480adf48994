"""A manager uses the Team page in headless Chromium."""

import pytest

from pipeline.models import Deal, Reassignment, User
from tests.browser import log_in, open_menu
from tests.factories import DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_deactivates_a_rep_and_hands_their_deals_to_another(
    page, live_server, manager, leaver, rep
):
    deal = DealFactory(rep=leaver, title="Espresso machine")
    log_in(page, live_server, "manager")
    open_menu(page, "Manage")
    page.get_by_role("link", name="Team").click()
    page.wait_for_url(f"{live_server.url}/team/")
    page.get_by_role("link", name=f"Deactivate {leaver}").click()
    page.get_by_label("Who takes over").select_option(label=str(rep))
    page.get_by_role("button", name="Deactivate and hand over").click()
    page.wait_for_url(f"{live_server.url}/team/")
    assert f"{rep} took over 1 open deal" in page.content()
    assert not User.objects.get(pk=leaver.pk).is_active
    assert Deal.objects.get(pk=deal.pk).rep_id == rep.pk
    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    assert f"Reassigned from {leaver} to {rep}" in page.locator(".timeline").inner_text()
    assert Reassignment.objects.filter(deal=deal).count() == 1
