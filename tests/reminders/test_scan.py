"""The scan as a whole: never twice, catch-up, hover don't smother, snooze, digests."""

import datetime
import threading
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from pipeline.models import Deal
from reminders import services
from reminders.models import (
    Reminder,
    ReminderDigest,
    ReminderKind,
    ReminderQueue,
    ReminderState,
)
from reminders.services import reminders_scan
from tests.factories import DealFactory, ReminderFactory, TouchFactory, UserFactory


def _deals_with_next_steps(rep, count: int, days_ago: int = 0) -> list[Deal]:
    """Deals whose only reminder is their next step (promised long ago, touched lately)."""
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    now = timezone.now()
    deals = []
    for _ in range(count):
        deal = DealFactory(
            rep=rep,
            customer__owner=rep,
            deposit_required=False,
            next_step_date=day,
            promised_at=now - datetime.timedelta(days=20),
        )
        TouchFactory(deal=deal, happened_at=now - datetime.timedelta(days=3), next_step_date=day)
        deals.append(deal)
    return deals


@pytest.mark.django_db
def test_a_second_scan_creates_nothing(rep):
    _deals_with_next_steps(rep, 3)
    first = reminders_scan()
    assert first.created == 3
    second = reminders_scan()
    assert (second.created, second.due, second.resolved) == (0, 0, 0)
    assert Reminder.objects.count() == 3


@pytest.mark.django_db
def test_catching_up_after_hours_of_downtime_makes_one_reminder_per_occurrence(rep):
    deal = DealFactory(rep=rep, deposit_required=False)
    Deal.objects.filter(pk=deal.pk).update(
        next_step_date=timezone.localdate() - datetime.timedelta(days=3)
    )
    # Nothing ran for three days; then beat fires the scans it missed, a minute apart.
    now = timezone.now()
    for minute in range(30):
        reminders_scan(now=now + datetime.timedelta(minutes=minute))
    reminders = Reminder.objects.filter(deal=deal, kind=ReminderKind.NEXT_STEP_DUE)
    assert reminders.count() == 1
    assert reminders.get().state == ReminderState.DUE


@pytest.mark.django_db
def test_hover_dont_smother_spaces_a_second_nag_of_a_kind_a_day_apart(rep):
    deal = DealFactory(rep=rep, deposit_required=False, next_step_date=timezone.localdate())
    first = ReminderFactory(
        deal=deal,
        occurrence="2000-01-01",
        why="An older next step",
        due_at=timezone.now() - datetime.timedelta(hours=2),
        state=ReminderState.DONE,
    )
    reminders_scan()
    second = Reminder.objects.get(deal=deal, occurrence=timezone.localdate().isoformat())
    assert second.due_at >= first.due_at + datetime.timedelta(hours=24)
    assert second.state == ReminderState.SCHEDULED


@pytest.mark.django_db
def test_a_snoozed_reminder_is_not_re_created_and_falls_due_again_later(rep):
    _deals_with_next_steps(rep, 1, days_ago=1)
    now = timezone.now()
    reminders_scan(now=now)
    reminder = Reminder.objects.get()
    services.reminder_snooze(
        reminder=reminder, user=rep, until=now + datetime.timedelta(hours=1), now=now
    )
    reminders_scan(now=now + datetime.timedelta(minutes=30))
    assert Reminder.objects.count() == 1
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.SNOOZED
    reminders_scan(now=now + datetime.timedelta(minutes=61))
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.DUE
    assert Reminder.objects.count() == 1


@pytest.mark.django_db
def test_a_done_reminder_stays_done_however_often_the_scan_runs(rep):
    _deals_with_next_steps(rep, 1, days_ago=1)
    reminders_scan()
    reminder = Reminder.objects.get()
    services.reminder_done(reminder=reminder, user=rep)
    for _ in range(3):
        reminders_scan()
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.DONE
    assert reminder.resolved_by == rep
    assert Reminder.objects.count() == 1


@pytest.mark.django_db
def test_done_on_a_closed_reminder_is_refused(rep):
    _deals_with_next_steps(rep, 1, days_ago=1)
    reminders_scan()
    reminder = Reminder.objects.get()
    services.reminder_done(reminder=reminder, user=rep)
    with pytest.raises(services.ReminderClosed):
        services.reminder_done(reminder=reminder, user=rep)


@pytest.mark.django_db
def test_snooze_choices_are_an_hour_and_tomorrow_morning_in_the_users_zone(rep):
    rep.time_zone = "Asia/Tokyo"
    now = datetime.datetime(2026, 3, 1, 20, 30, tzinfo=datetime.UTC)  # 05:30 on the 2nd in Tokyo
    choices = services.snooze_choices(rep, now=now)
    assert choices["hour"] == now + datetime.timedelta(hours=1)
    assert choices["morning"].isoformat() == "2026-03-03T09:00:00+09:00"


# --- the email digest ---------------------------------------------------------------


@pytest.mark.django_db
def test_due_reminders_are_emailed_in_one_digest_per_person(rep):
    _deals_with_next_steps(rep, 3, days_ago=1)
    reminders_scan()
    assert services.reminders_pending_recipients() == [f"user:{rep.pk}"]
    assert services.reminders_send_digest(recipient=f"user:{rep.pk}") == 3
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [rep.email]
    assert "3 reminders due" in mail.outbox[0].subject
    assert not Reminder.objects.filter(notified_at__isnull=True).exists()


@pytest.mark.django_db
def test_two_workers_sending_one_digest_send_one_email(rep):
    _deals_with_next_steps(rep, 2, days_ago=1)
    reminders_scan()
    recipient = f"user:{rep.pk}"
    assert services.reminders_send_digest(recipient=recipient) == 2
    assert services.reminders_send_digest(recipient=recipient) == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_nobody_gets_more_than_one_digest_per_interval(rep):
    now = timezone.now()
    _deals_with_next_steps(rep, 1, days_ago=1)
    reminders_scan(now=now)
    services.reminders_send_digest(recipient=f"user:{rep.pk}", now=now)
    _deals_with_next_steps(rep, 1, days_ago=2)
    reminders_scan(now=now)
    soon = now + datetime.timedelta(minutes=10)
    assert services.reminders_pending_recipients(now=soon) == []
    assert services.reminders_send_digest(recipient=f"user:{rep.pk}", now=soon) == 0
    later = now + datetime.timedelta(minutes=31)
    assert services.reminders_pending_recipients(now=later) == [f"user:{rep.pk}"]
    assert services.reminders_send_digest(recipient=f"user:{rep.pk}", now=later) == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_a_refusing_mail_server_is_backed_off_and_nothing_is_marked_sent(rep):
    now = timezone.now()
    _deals_with_next_steps(rep, 1, days_ago=1)
    reminders_scan(now=now)
    with mock.patch("reminders.digest.EmailMessage.send", side_effect=OSError("refused")):
        assert services.reminders_send_digest(recipient=f"user:{rep.pk}", now=now) == 0
    digest = ReminderDigest.objects.get()
    assert digest.failures == 1
    assert digest.retry_at > now
    assert digest.last_sent_at is None
    assert Reminder.objects.get().notified_at is None
    assert services.reminders_pending_recipients(now=now) == []
    assert services.reminders_send_digest(recipient=f"user:{rep.pk}", now=digest.retry_at) == 1


@pytest.mark.django_db
def test_audit_queue_reminders_are_emailed_to_every_auditor(rep, auditor):
    deal = DealFactory(rep=rep)
    ReminderFactory(
        deal=deal,
        kind=ReminderKind.AUDIT_DUE,
        occurrence="a1",
        owner=None,
        queue=ReminderQueue.AUDIT,
        why="Call window opens",
        due_at=timezone.now(),
        state=ReminderState.DUE,
    )
    assert services.reminders_pending_recipients() == ["queue:audit"]
    assert services.reminders_send_digest(recipient="queue:audit") == 1
    assert mail.outbox[0].to == [auditor.email]


@pytest.mark.django_db
def test_pending_recipients_are_each_owner_and_queue_with_due_reminders_not_yet_emailed(
    rep, auditor, django_assert_num_queries
):
    """Read as a skip scan, one recipient at a time: every owner and queue with a due
    reminder not emailed is found once, however many reminders each has waiting."""
    other, quiet = UserFactory(username="other-rep"), UserFactory(username="quiet-rep")
    deal = DealFactory(rep=rep)
    now = timezone.now()

    def reminder(occurrence, *, owner, queue="", state=ReminderState.DUE, notified_at=None):
        ReminderFactory(
            deal=deal,
            kind=ReminderKind.NEXT_STEP_DUE,
            occurrence=occurrence,
            owner=owner,
            queue=queue,
            due_at=now,
            state=state,
            notified_at=notified_at,
        )

    for n in range(3):
        reminder(f"rep-{n}", owner=rep)
        reminder(f"queue-{n}", owner=None, queue=ReminderQueue.AUDIT)
    reminder("other", owner=other)
    reminder("emailed", owner=quiet, notified_at=now)  # in a digest already
    reminder("coming", owner=quiet, state=ReminderState.SCHEDULED)  # not due yet
    with django_assert_num_queries(2):  # the recipients, then whose digest must wait
        pending = services.reminders_pending_recipients(now=now)
    assert pending == sorted([f"user:{rep.pk}", f"user:{other.pk}", "queue:audit"])


# --- concurrency (PostgreSQL: row locks and real parallel transactions) -----------------


def _in_threads(target, count: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run():
        try:
            barrier.wait()
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.needs_postgres("racing scans: SQLite serialises writers, it has no row locks")
@pytest.mark.django_db(transaction=True)
def test_scans_racing_on_postgresql_create_each_reminder_once(rep):
    _deals_with_next_steps(rep, 40, days_ago=1)
    errors = _in_threads(reminders_scan, 6)
    assert errors == []
    assert Reminder.objects.count() == 40
    assert Reminder.objects.filter(state=ReminderState.DUE).count() == 40


@pytest.mark.needs_postgres("racing digests: SQLite serialises writers, it has no row locks")
@pytest.mark.django_db(transaction=True)
def test_digests_racing_on_postgresql_send_one_email(rep):
    _deals_with_next_steps(rep, 5, days_ago=1)
    reminders_scan()
    errors = _in_threads(lambda: services.reminders_send_digest(recipient=f"user:{rep.pk}"), 5)
    assert errors == []
    assert len(mail.outbox) == 1


# --- the minute's scan (by each deal's next moment: tests/reminders/test_schedule.py) ---


@pytest.mark.django_db
def test_the_heartbeat_drains_changes_whose_task_was_lost(rep, customer):
    """An event whose task was lost (broker down) is caught by the next minute's scan:
    the change is in the outbox, and the scan drains it in full."""
    from pipeline.events import deal_changed_on_commit, deal_changes_pending
    from reminders import tasks

    now = timezone.now()
    deal = DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        promised_at=now - datetime.timedelta(days=20),
        next_step_date=timezone.localdate() - datetime.timedelta(days=3),
    )
    TouchFactory(deal=deal, happened_at=now - datetime.timedelta(days=4))
    deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)  # its drain never ran
    reminders_scan(now=now, sweep=False)  # the scan by time alone knows of no change
    assert not Reminder.objects.filter(deal=deal, kind=ReminderKind.NEXT_STEP_DUE).exists()
    tasks.reminders_scan()
    assert Reminder.objects.filter(deal=deal, kind=ReminderKind.NEXT_STEP_DUE).exists()
    assert deal_changes_pending() == 0


@pytest.mark.django_db
def test_the_last_scan_time_is_shared_by_every_worker():
    first = timezone.now()
    assert services.reminders_scan_mark(now=first) is None
    second = first + datetime.timedelta(minutes=1)
    assert services.reminders_scan_mark(now=second) == first
    assert services.reminders_pending_recipients(now=second) == []


@pytest.mark.django_db
def test_a_scan_killed_half_way_leaves_no_mark_and_the_next_one_runs_in_full(monkeypatch):
    from reminders import tasks

    sweeps = []
    real_scan = services.reminders_scan

    def scan(**kwargs):
        sweeps.append(kwargs["sweep"])
        if len(sweeps) == 1:
            raise SystemExit("SIGKILL")  # the worker died mid-scan
        return real_scan(**kwargs)

    monkeypatch.setattr(services, "reminders_scan", scan)
    with pytest.raises(SystemExit):
        tasks.reminders_scan()
    assert services.reminders_last_scan() is None  # the killed scan left no mark
    tasks.reminders_scan()
    assert sweeps == [False, False]  # beat never sweeps: each deal's moment says what is due
    assert services.reminders_last_scan() is not None  # and, done, leaves its mark


@pytest.mark.django_db
def test_the_scan_logs_everything_it_marked_due(rep, deal, caplog):
    """The issue: the log line under-reported what the scan marked due."""
    import logging

    from reminders import tasks
    from tests.factories import ReminderFactory

    for n in range(3):
        ReminderFactory(
            deal=deal,
            kind=ReminderKind.STALE_DEAL,  # nothing in the deal's facts resolves it
            occurrence=f"log-{n}",
            state=ReminderState.SCHEDULED,
            due_at=timezone.now() - datetime.timedelta(minutes=n + 1),
        )
    with caplog.at_level(logging.INFO, logger="reminders.tasks"):
        result = tasks.reminders_scan()
    due = result["due first"] + result["changed deals"]["due"] + result["by time"]["due"]
    assert due == 3 == Reminder.objects.filter(state=ReminderState.DUE).count()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Reminder ")]
    assert "3 due at once" in line


@pytest.mark.django_db
def test_due_marking_finds_a_ripe_snooze_and_a_ripe_schedule_each_alone(rep, make_reminder):
    """Both ripe indexes are probed in one query: either may be the one holding work."""
    deal = DealFactory(rep=rep, customer__owner=rep)
    now = timezone.now()
    over = now - datetime.timedelta(minutes=1)
    snoozed = make_reminder(deal, state=ReminderState.SNOOZED, snoozed_until=over)
    later = make_reminder(deal, due_in_minutes=30)
    assert services.reminders_mark_due(now=now) == 1
    snoozed.refresh_from_db()
    later.refresh_from_db()
    assert (snoozed.state, later.state) == (ReminderState.DUE, ReminderState.SCHEDULED)
    assert services.reminders_mark_due(now=now) == 0
    assert services.reminders_mark_due(now=now + datetime.timedelta(minutes=31)) == 1
    later.refresh_from_db()
    assert later.state == ReminderState.DUE
