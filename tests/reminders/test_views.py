"""The panel, the badge, /reminders/ and the actions: access, queries, polling answers."""

import datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from pipeline.models import Role
from reminders.models import Reminder, ReminderKind, ReminderQueue, ReminderState
from reminders.selectors import reminder_panel, reminders_due_count
from tests.factories import DealFactory, ReminderFactory, UserFactory

pytestmark = pytest.mark.django_db

PANEL = reverse("reminder_panel")
BADGE = reverse("reminder_badge")
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "reminders-panel"}


@pytest.fixture
def due(deal, make_reminder):
    return make_reminder(deal, why="Next step for today: Call Dana about the order")


def test_home_shows_the_reps_due_reminders_with_deal_customer_and_why(rep_client, due):
    response = rep_client.get("/")
    body = response.content.decode()
    assert 'id="reminders-panel"' in body
    assert "Call Dana about the order" in body
    assert "Dana Whitfield" in body
    assert reverse("reminder_done", args=[due.pk]) in body
    # It polls only while the tab is visible (static/js/cleared.js; no eval under the CSP).
    assert 'hx-trigger="every 1s" data-poll-visible' in body


def test_the_nav_badge_counts_due_reminders(rep_client, due):
    body = rep_client.get(reverse("deal_list")).content.decode()
    assert 'id="reminders-badge"' in body
    assert 'class="badge reminder-count">1<' in body


def test_panel_lists_due_then_overdue_then_coming_today(rep, deal, make_reminder):
    now = timezone.now()
    zone = ZoneInfo(rep.time_zone)
    start_of_today = datetime.datetime.combine(now.astimezone(zone).date(), datetime.time(0), zone)
    overdue = make_reminder(deal, due_in_minutes=-60 * 30)
    coming = make_reminder(deal, due_in_minutes=1)
    panel = reminder_panel(rep, now=now)
    keys = {s.key: [r.pk for r in s.reminders] for s in panel.sections}
    assert overdue.due_at < start_of_today
    assert keys["overdue"] == [overdue.pk]
    assert keys.get("coming", [coming.pk]) == [coming.pk] or coming.due_at >= start_of_today
    assert panel.due_count == 1


def test_panel_skips_other_peoples_snoozed_future_and_closed_reminders(
    rep, other_rep, deal, make_reminder
):
    mine = make_reminder(deal)
    make_reminder(deal, owner=other_rep)
    make_reminder(deal, state=ReminderState.DONE)
    soon = timezone.now() + datetime.timedelta(hours=1)
    asleep = make_reminder(deal, state=ReminderState.SNOOZED, snoozed_until=soon)
    make_reminder(
        deal, state=ReminderState.SNOOZED, snoozed_until=soon + datetime.timedelta(days=2)
    )
    make_reminder(deal, due_in_minutes=60 * 48)
    panel = reminder_panel(rep)
    sections = {s.key: [r.pk for r in s.reminders] for s in panel.sections}
    # Snoozed until later today: only in the folded "Snoozed" group (issue 13).
    later_today = timezone.localdate(soon, ZoneInfo(rep.time_zone)) == timezone.localdate(
        timezone.now(), ZoneInfo(rep.time_zone)
    )
    assert sections.pop("snoozed", []) == ([asleep.pk] if later_today else [])
    assert [pk for pks in sections.values() for pk in pks] == [mine.pk]


@pytest.mark.parametrize("count", [3, 40])
def test_the_panel_request_costs_at_most_6_queries(
    rep_client, rep, make_reminder, django_assert_max_num_queries, count
):
    for _ in range(count):
        make_reminder(DealFactory(rep=rep))
    # The session, the user, the roles, the panel's version, the panel's
    # reminders and their deals with customers (a poll that finds nothing new
    # stops at the version): the same whatever the number of reminders.
    with django_assert_max_num_queries(6):
        response = rep_client.get(PANEL, **HTMX)
    assert response.status_code == 200
    assert response.content.decode().count('class="reminder"') == min(count, 12)


def test_a_poll_that_finds_nothing_new_gets_an_empty_answer(rep_client, rep, due):
    version = reminder_panel(rep).version
    response = rep_client.get(PANEL, {"v": version}, **HTMX)
    assert response.status_code == 204
    assert response.content == b""


def test_a_poll_gets_the_panel_again_when_a_reminder_falls_due(
    rep_client, rep, deal, due, make_reminder
):
    version = reminder_panel(rep).version
    make_reminder(deal, why="Something new fell due")
    response = rep_client.get(PANEL, {"v": version}, **HTMX)
    assert response.status_code == 200
    assert "Something new fell due" in response.content.decode()


def test_the_panel_answers_304_to_a_matching_etag(rep_client, due):
    first = rep_client.get(PANEL)
    etag = first["ETag"]
    again = rep_client.get(PANEL, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


def test_the_badge_answers_204_when_its_count_is_unchanged(rep_client, due):
    assert rep_client.get(BADGE, {"n": "1"}).status_code == 204
    response = rep_client.get(BADGE, {"n": "0"})
    assert response.status_code == 200
    assert ">1<" in response.content.decode()


def test_done_closes_the_reminder_and_refreshes_the_panel(rep_client, rep, due):
    response = rep_client.post(reverse("reminder_done", args=[due.pk]), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="reminder-{due.pk}"' not in body
    assert 'hx-swap-oob="true"' in body  # the nav badge follows
    due.refresh_from_db()
    assert due.state == ReminderState.DONE
    assert due.resolved_by == rep
    assert due.closed_at is not None


def test_done_without_javascript_redirects_back(rep_client, due):
    response = rep_client.post(reverse("reminder_done", args=[due.pk]), {"next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_done_never_redirects_off_site(rep_client, due):
    response = rep_client.post(
        reverse("reminder_done", args=[due.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("reminder_list")


def test_snooze_for_an_hour(rep_client, due):
    before = timezone.now()
    rep_client.post(reverse("reminder_snooze", args=[due.pk]), {"until": "hour"}, **HTMX)
    due.refresh_from_db()
    assert due.state == ReminderState.SNOOZED
    assert before + datetime.timedelta(minutes=59) < due.snoozed_until
    assert due.snoozed_until < before + datetime.timedelta(minutes=61)


def test_snooze_until_tomorrow_morning_in_the_users_time_zone(rep_client, rep, due):
    rep.time_zone = "America/Los_Angeles"
    rep.save()
    rep_client.post(reverse("reminder_snooze", args=[due.pk]), {"until": "morning"}, **HTMX)
    due.refresh_from_db()
    local = due.snoozed_until.astimezone(ZoneInfo("America/Los_Angeles"))
    today = timezone.now().astimezone(ZoneInfo("America/Los_Angeles")).date()
    assert (local.date(), local.hour, local.minute) == (today + datetime.timedelta(days=1), 9, 0)


def test_snooze_until_a_picked_time_read_in_the_users_time_zone(rep_client, rep, due):
    rep.time_zone = "Asia/Tokyo"
    rep.save()
    picked = (timezone.now() + datetime.timedelta(days=2)).astimezone(ZoneInfo("Asia/Tokyo"))
    text = picked.strftime("%Y-%m-%dT%H:%M")
    rep_client.post(reverse("reminder_snooze", args=[due.pk]), {"until": "at", "at": text}, **HTMX)
    due.refresh_from_db()
    assert due.snoozed_until.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%dT%H:%M") == text


def test_snooze_until_the_past_is_refused(rep_client, due):
    response = rep_client.post(
        reverse("reminder_snooze", args=[due.pk]),
        {"until": "at", "at": "2001-01-01T09:00"},
        **HTMX,
    )
    assert response.status_code == 422
    assert "in the future" in response.content.decode()
    due.refresh_from_db()
    assert due.state == ReminderState.DUE


@pytest.mark.parametrize("action", ["reminder_done", "reminder_snooze"])
def test_another_rep_cannot_act_on_a_reminder_that_is_not_theirs(other_rep_client, due, action):
    response = other_rep_client.post(reverse(action, args=[due.pk]), {"until": "hour"})
    assert response.status_code == 404
    due.refresh_from_db()
    assert due.state == ReminderState.DUE


def test_a_manager_cannot_act_on_their_reps_own_reminder(manager_client, due):
    assert manager_client.post(reverse("reminder_done", args=[due.pk])).status_code == 404


def test_actions_refuse_get(rep_client, due):
    assert rep_client.get(reverse("reminder_done", args=[due.pk])).status_code == 405


def _queue_reminder(deal) -> Reminder:
    return ReminderFactory(
        deal=deal,
        kind=ReminderKind.AUDIT_DUE,
        occurrence="a1",
        owner=None,
        queue=ReminderQueue.AUDIT,
        why="Call window open: phone the customer",
        due_at=timezone.now() - datetime.timedelta(minutes=1),
        state=ReminderState.DUE,
    )


def test_auditors_share_the_audit_queue_reminders(auditor_client, auditor, deal):
    reminder = _queue_reminder(deal)
    body = auditor_client.get(PANEL).content.decode()
    assert "phone the customer" in body
    assert reverse("audits:queue") in body  # auditors act from the queue, not the deal page
    response = auditor_client.post(reverse("reminder_done", args=[reminder.pk]))
    assert response.status_code == 302
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.DONE
    assert reminder.resolved_by == auditor


def test_a_rep_cannot_see_or_act_on_the_audit_queue(rep_client, deal):
    reminder = _queue_reminder(deal)
    assert "phone the customer" not in rep_client.get(PANEL).content.decode()
    assert rep_client.post(reverse("reminder_done", args=[reminder.pk])).status_code == 404


def test_the_list_filters_by_kind_and_by_done(rep_client, deal, make_reminder):
    make_reminder(deal, kind=ReminderKind.STALE_DEAL, why="stale one")
    make_reminder(deal, kind=ReminderKind.NEXT_STEP_DUE, why="next step one")
    make_reminder(deal, state=ReminderState.DONE, why="finished one")
    body = rep_client.get(reverse("reminder_list"), {"kind": "stale_deal"}).content.decode()
    assert "stale one" in body and "next step one" not in body
    body = rep_client.get(reverse("reminder_list"), {"show": "done"}).content.decode()
    assert "finished one" in body and "stale one" not in body
    body = rep_client.get(reverse("reminder_list"), {"show": "due"}).content.decode()
    assert "stale one" in body and "finished one" not in body


def test_the_list_is_paginated(rep_client, deal, make_reminder):
    for _ in range(30):
        make_reminder(deal)
    first = rep_client.get(reverse("reminder_list")).content.decode()
    assert "Page 1 of 2" in first
    second = rep_client.get(reverse("reminder_list"), {"page": 2}).content.decode()
    assert second.count('<tr id="reminder-') == 5


def test_the_list_shows_only_the_users_own(other_rep_client, due):
    assert due.why not in other_rep_client.get(reverse("reminder_list")).content.decode()


def test_actions_are_saved_while_the_broker_is_down(
    rep_client, rep, deal, due, django_capture_on_commit_callbacks
):
    """Redis stopped: the panel comes from the database and the actions need no broker."""
    broken = mock.patch(
        "reminders.tasks.reminders_drain.apply_async", side_effect=OSError("no broker")
    )
    with broken, django_capture_on_commit_callbacks(execute=True):
        assert rep_client.get(PANEL).status_code == 200
        assert rep_client.post(reverse("reminder_done", args=[due.pk])).status_code == 302
        response = rep_client.post(
            reverse("touch_new", args=[deal.pk]),
            {
                "kind": "call",
                "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
                "discussed": "Delivery",
                "agreed_to": "A slot on Friday",
                "next_step": "Confirm the slot",
                "next_step_date": (timezone.localdate() + datetime.timedelta(days=1)).isoformat(),
            },
        )
    assert response.status_code == 302
    due.refresh_from_db()
    assert due.state == ReminderState.DONE


def test_the_badge_counts_each_persons_own_and_their_queues_at_each_moment():
    """The badge's query is compiled once per set of role queues (pipeline.compiled):
    whose reminders and which moment are its parameters, never frozen at the first."""
    now = timezone.now()
    rep, other = UserFactory(role=Role.REP), UserFactory(role=Role.REP)
    auditor = UserFactory(role=Role.AUDITOR)
    deal = DealFactory(rep=rep)
    ReminderFactory(deal=deal, due_at=now - datetime.timedelta(hours=1))
    ReminderFactory(deal=deal, due_at=now + datetime.timedelta(hours=1))
    ReminderFactory(
        deal=deal,
        state=ReminderState.SNOOZED,
        due_at=now - datetime.timedelta(days=1),
        snoozed_until=now + datetime.timedelta(hours=2),
    )
    ReminderFactory(deal=deal, owner=None, queue=ReminderQueue.AUDIT, due_at=now)
    ReminderFactory(deal=DealFactory(rep=other), due_at=now - datetime.timedelta(minutes=5))
    later = now + datetime.timedelta(hours=3)
    assert [reminders_due_count(rep, now), reminders_due_count(rep, later)] == [1, 3]
    assert [reminders_due_count(other, now), reminders_due_count(other, later)] == [1, 1]
    assert [reminders_due_count(auditor, now), reminders_due_count(auditor, later)] == [1, 1]
    assert reminders_due_count(rep, now - datetime.timedelta(hours=2)) == 0


def test_past_99_due_the_badge_says_99_plus_and_counts_no_further(rep_client, rep, customer):
    now = timezone.now()
    deals = DealFactory.create_batch(3, rep=rep, customer=customer)
    Reminder.objects.bulk_create(
        Reminder(
            deal=deals[n % 3], kind=ReminderKind.STALE_DEAL, occurrence=f"o{n}", owner=rep,
            why="Call back", due_at=now - datetime.timedelta(minutes=n + 1),
            state=ReminderState.DUE,
        )
        for n in range(130)
    )  # fmt: skip
    assert reminders_due_count(rep) == 100  # counted up to the cap, not all 130
    body = rep_client.get(reverse("reminder_list")).content.decode()
    assert 'class="badge reminder-count">99+<' in body
    assert 'aria-label="Reminders: more than 99 due"' in body
    # The panel knows the exact number; the badge it swaps in says the same 99+.
    panel = rep_client.get(reverse("reminder_panel"), HTTP_HX_REQUEST="true").content.decode()
    assert 'class="badge reminder-count">99+<' in panel
    # Polling with the capped count: nothing changed, nothing sent.
    assert rep_client.get(BADGE, {"n": "100"}).status_code == 204
    Reminder.objects.filter(occurrence__in=[f"o{n}" for n in range(40)]).update(
        state=ReminderState.DONE
    )
    assert reminders_due_count(rep) == 90
    again = rep_client.get(BADGE, {"n": "100"}).content.decode()
    assert 'class="badge reminder-count">90<' in again
