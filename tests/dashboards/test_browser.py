"""The board and the pipeline, driven in headless Chromium as a manager and a rep would."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import Deal
from pipeline.stages import Stage
from tests.browser import log_in
from tests.factories import CustomerFactory, DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_filters_pages_and_exports_the_board(page, live_server, manager, rep, teammate):
    old = timezone.now() - datetime.timedelta(days=100)
    acme = CustomerFactory(owner=rep, name="Acme Old Corp")
    for index in range(55):
        DealFactory(rep=rep, amount=Decimal(1000 + index), promised_at=old)
    DealFactory(rep=teammate, customer=acme, amount=Decimal("42.00"))
    log_in(page, live_server, "manager")
    page.get_by_role("link", name="Not paid yet").first.click()
    page.wait_for_url(f"{live_server.url}/board/")
    assert "56 deals match" in page.locator("#board-table").inner_text()

    # Filtering swaps only the table and puts the filter in the URL.
    page.evaluate("window.__noReload = true")
    page.get_by_label("Age", exact=True).select_option("90+")
    page.wait_for_url("**/board/?*bucket=90%2B*")
    page.get_by_text("55 deals match").wait_for()
    assert page.evaluate("window.__noReload") is True

    # Keyset pages: 50 on the first, 5 on the next, and back.
    assert page.locator("#board-table tbody tr").count() == 50
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url("**after=*")
    assert page.locator("#board-table tbody tr").count() == 5
    page.get_by_role("link", name="← Previous").click()
    page.wait_for_url("**before=*")
    assert page.locator("#board-table tbody tr").count() == 50

    # Sorting by a column keeps the filter.
    page.get_by_role("link", name="Outstanding").click()
    page.wait_for_url("**sort=outstanding*")
    first_amount = page.locator("#board-table tbody tr").first.locator("td").nth(5).inner_text()
    assert first_amount == "$1,000.00"

    # The export is exactly the filtered board.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export these as CSV").click()
    with open(download_info.value.path()) as exported:
        lines = exported.read().strip().splitlines()
    assert len(lines) == 1 + 55
    assert "Acme Old Corp" not in "".join(lines)

    # The charts arrive by themselves.
    page.locator("#charts svg").first.wait_for()
    assert page.locator("#charts svg").count() == 3


def test_a_rep_drags_a_card_to_a_legal_stage_and_is_refused_an_illegal_one(page, live_server, rep):
    upfront = DealFactory(
        rep=rep, payment_option="upfront", stage=Stage.DEPOSIT, customer__name="Upfront Ursula"
    )
    billed = DealFactory(
        rep=rep, payment_option="invoice", deposit_required=False, customer__name="Billed Bob"
    )
    log_in(page, live_server, "rep")
    board = page.locator("#pipeline-board")
    delivered = board.locator('.board-column[data-stage="delivered"]')

    board.locator(f'.deal-card[data-deal="{billed.pk}"]').drag_to(delivered)
    page.get_by_text("must reach Audit confirmed before Delivered").wait_for()
    assert Deal.objects.get(pk=billed.pk).stage == Stage.PROMISED
    assert board.locator(f'.board-column[data-stage="promised"] [data-deal="{billed.pk}"]').count()

    board.locator(f'.deal-card[data-deal="{upfront.pk}"]').drag_to(delivered)
    page.get_by_text("Upfront Ursula moved to Delivered").wait_for()
    assert Deal.objects.get(pk=upfront.pk).stage == Stage.DELIVERED
    assert delivered.locator(f'[data-deal="{upfront.pk}"]').count() == 1


def test_the_board_and_home_fit_a_phone(page, live_server, manager, rep):
    DealFactory(rep=rep)
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "manager")
    for path in ("/", "/board/"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.body.scrollWidth") <= 375, path
