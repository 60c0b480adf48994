"""The board's "Next reminder" column (issue 13): the next reminder to come, and
an overdue one shown as "overdue since …", not a bare time in the past."""

import datetime
import re

import pytest
from django.utils import timezone

from dashboards.board import NO_REMINDER, BoardFilters, board_deals
from reminders.models import ReminderKind, ReminderState
from tests.factories import DealFactory, ReminderFactory

pytestmark = pytest.mark.django_db


def _at(hours: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(hours=hours)


def _row(html: str, deal) -> str:
    match = re.search(rf"<tr>\s*<td><a href=\"/deals/{deal.pk}/\">.*?</tr>", html, re.S)
    assert match, f"deal {deal.pk} is not on the board"
    return match.group(0)


def _reminder(deal, occurrence, hours, state=ReminderState.SCHEDULED, **fields):
    return ReminderFactory(
        deal=deal,
        kind=fields.pop("kind", ReminderKind.NEXT_STEP_DUE),
        occurrence=occurrence,
        owner=deal.rep,
        due_at=_at(hours),
        state=state,
        **fields,
    )


def test_a_snoozed_reminder_counts_from_the_end_of_its_snooze(manager, rep):
    deal = DealFactory(rep=rep)
    _reminder(deal, "a", -48, ReminderState.SNOOZED, snoozed_until=_at(5))
    _reminder(deal, "b", 30, ReminderState.SCHEDULED)
    row = board_deals(manager, BoardFilters()).get(pk=deal.pk)
    assert abs(row.next_reminder_at - _at(5)) < datetime.timedelta(minutes=1)


def test_closed_reminders_are_not_the_next_one(manager, rep):
    deal = DealFactory(rep=rep)
    _reminder(deal, "done", -2, ReminderState.DONE)
    row = board_deals(manager, BoardFilters()).get(pk=deal.pk)
    assert row.next_reminder_at == NO_REMINDER


def test_the_board_shows_the_next_to_come_and_an_overdue_one_distinctly(manager_client, rep):
    coming = DealFactory(rep=rep, customer__name="Coming Co")
    soon = _reminder(coming, "soon", 3, kind=ReminderKind.PAYMENT_DUE).due_at
    _reminder(coming, "later", 50)
    overdue = DealFactory(rep=rep, customer__name="Overdue Co")
    past = _reminder(overdue, "past", -30, ReminderState.DUE, kind=ReminderKind.PAYMENT_OVERDUE)
    then = timezone.localtime(_reminder(overdue, "next", 20).due_at)
    html = manager_client.get("/board/").text

    # The times the reminders were made with, not the clock read again (a minute
    # may have turned meanwhile).
    soon = timezone.localtime(soon)
    row = _row(html, coming)
    assert f"{soon:%-d %b, %H:%M}" in row and "overdue" not in row
    assert "Payment due" in row

    since = timezone.localtime(past.due_at)
    row = _row(html, overdue)
    assert "overdue</span>" in row and f"since {since:%-d %b, %H:%M}" in row
    assert "Payment overdue" in row and f"then {then:%-d %b, %H:%M}" in row


def test_sorting_by_next_reminder_puts_the_most_overdue_first(manager_client, rep):
    later = DealFactory(rep=rep, customer__name="Later")
    _reminder(later, "x", 10)
    overdue = DealFactory(rep=rep, customer__name="Overdue")
    _reminder(overdue, "x", -10, ReminderState.DUE)
    html = manager_client.get("/board/?sort=next_reminder").text
    assert html.index(f'/deals/{overdue.pk}/"') < html.index(f'/deals/{later.pk}/"')


def test_a_reminder_due_within_the_day_is_due_not_overdue(manager_client, rep):
    deal = DealFactory(rep=rep, customer__name="Due Co")
    just = _reminder(deal, "just", -2, ReminderState.DUE)
    row = _row(manager_client.get("/board/").text, deal)
    since = timezone.localtime(just.due_at)
    assert "due</span>" in row and f"since {since:%-d %b, %H:%M}" in row
    assert "overdue" not in row
