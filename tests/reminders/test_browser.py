"""A reminder falls due while the dashboard is open: it appears without a reload."""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from playwright.sync_api import expect

from pipeline.models import Deal
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.browser import log_in
from tests.factories import ReminderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reminder_falling_due_appears_on_the_open_dashboard_and_is_marked_done(
    page, live_server, rep, deal, settings
):
    settings.REMINDERS_MORNING_HOUR = 0  # a next step for today is due from midnight
    log_in(page, live_server, "rep")
    panel = page.locator("#reminders-panel")
    expect(panel).to_contain_text("Nothing to chase right now")
    page.evaluate("window.__not_reloaded = true")

    # The rep's next step is for today; beat's next scan finds it due.
    # Today where the rep is (the thread's zone may be whoever signed in last).
    today = timezone.localdate(timezone=ZoneInfo(rep.time_zone))
    Deal.objects.filter(pk=deal.pk).update(next_step_date=today, next_step="Call Dana")
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.NEXT_STEP_DUE)

    due_now = panel.locator(".reminder-section-due")
    expect(due_now).to_contain_text("Call Dana", timeout=10_000)
    expect(page.locator("#reminders-badge .reminder-count")).to_have_text("1", timeout=10_000)
    assert page.evaluate("window.__not_reloaded") is True

    panel.locator(f"#reminder-{reminder.pk}").get_by_role("button", name="Done").click()
    expect(panel).to_contain_text("Nothing to chase right now")
    expect(page.locator("#reminders-badge .reminder-count")).to_have_count(0)
    assert page.evaluate("window.__not_reloaded") is True
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.DONE
    assert reminder.resolved_by == rep


def test_snooze_for_an_hour_takes_the_reminder_off_the_panel(page, live_server, rep, deal):
    reminder = ReminderFactory(
        deal=deal,
        kind=ReminderKind.STALE_DEAL,
        occurrence="browser",
        why="No touch since Mon 2 Nov: always have a reason to call back.",
        due_at=timezone.now() - datetime.timedelta(hours=1),
        state=ReminderState.DUE,
    )
    log_in(page, live_server, "rep")
    item = page.locator(f"#reminder-{reminder.pk}")
    item.get_by_role("button", name="Snooze 1 hour").click()
    # Off the due list; folded into "Snoozed until later today" (issue 13) if
    # the hour ends today.
    awake = page.locator(
        f".reminder-section:not(.reminder-section-snoozed) #reminder-{reminder.pk}"
    )
    expect(awake).to_have_count(0)
    expect(item).to_be_hidden()
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.SNOOZED


def test_an_open_home_whose_session_ended_goes_to_the_login_page_at_the_next_poll(
    page, live_server, rep
):
    """The panel's poll is redirected to the login page: the page goes there (and
    comes back home after it), instead of the login form swapped into the panel."""
    log_in(page, live_server, "rep")
    expect(page.locator("#reminders-panel")).to_be_visible()
    Session.objects.all().delete()  # expired, or logged out in another tab
    page.wait_for_url(re.compile(r"/accounts/login/\?next=%2F$"), timeout=10_000)
    expect(page.get_by_label("Username")).to_be_visible()
    page.get_by_label("Username").fill("rep")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator("#reminders-panel")).to_have_count(1)
