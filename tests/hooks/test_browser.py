"""Webhooks as a manager uses them, in headless Chromium: a subscription made
(its secret shown once), a test event sent, the delivery log and Resend; and
the calendar address on the Security page."""

import os

import pytest

from hooks.delivery import deliveries_run
from hooks.models import Delivery, Subscription
from tests.browser import log_in, open_menu

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("CLEARED_SCREENSHOTS", "")


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_a_manager_subscribes_sends_a_test_event_and_resends_from_the_log(
    page, live_server, manager, receiver, settings
):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = True
    log_in(page, live_server, "manager")
    open_menu(page, "Manage")
    page.get_by_role("link", name="Webhooks").first.click()
    page.get_by_label("Receiver URL").fill(receiver.url)
    page.get_by_label("Name (optional)").fill("Accounting system")
    page.get_by_label("A payment clears").check()
    page.get_by_label("A deal is lost").check()
    _shot(page, "webhooks-new")
    page.get_by_role("button", name="Create subscription").click()

    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    assert "not shown again" in page.content()
    _shot(page, "webhooks-created")
    receiver.secret = secret
    page.get_by_role("button", name="Continue to the subscription").click()
    assert secret not in page.content()  # once only

    page.get_by_role("button", name="Send a test event").click()
    page.wait_for_selector(".flash-success")
    deliveries_run()  # what the webhooks worker does
    page.reload()
    row = page.locator(".delivery-log tbody tr").first
    assert "webhook.test" in row.inner_text()
    assert "Delivered" in row.locator(".delivery-state").inner_text()
    assert "200" in row.inner_text()
    row.get_by_text("Body").click()
    assert '"type":"webhook.test"' in row.locator(".delivery-body").inner_text()
    _shot(page, "webhooks-log")

    row.get_by_role("button", name="Resend").click()
    page.wait_for_selector(".flash-success")
    deliveries_run()
    delivery = Delivery.objects.get()
    assert receiver.ids() == {delivery.event_id: 2}
    assert all(r["verified"] for r in receiver.received)
    assert Subscription.objects.get().events == ["deal.lost", "payment.cleared"]


def test_a_rep_gets_a_calendar_address_from_the_security_page(page, live_server, rep):
    log_in(page, live_server, "rep")
    open_menu(page, "rep")
    page.get_by_role("link", name="Security").click()
    page.get_by_role("button", name="Get my calendar address").click()
    url = page.locator("#calendar-url").inner_text().strip()
    assert "/calendar/" in url and url.endswith(".ics")
    _shot(page, "calendar-created")
    page.get_by_role("button", name="Back to Security").click()
    assert page.get_by_role("button", name="Revoke").count() == 1
    _shot(page, "security-calendar")
