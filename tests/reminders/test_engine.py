"""The engine of issue 12: cheap per deal, cheaper in bulk; events coalesce; the
heartbeat is single-flight; digests are claimed under a short lease."""

import datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from billing.models import PaymentStatus
from pipeline.events import deal_changed_on_commit, deal_changes_pending
from pipeline.models import Deal
from pipeline.stages import Stage
from reminders import services, tasks
from reminders.models import Job, Reminder, ReminderDigest, ReminderKind, ReminderState
from reminders.schedule import schedules_wake
from tests.factories import (
    AuditFactory,
    DealFactory,
    InvoiceFactory,
    PaymentFactory,
    TouchFactory,
)

pytestmark = pytest.mark.django_db

# Issue 12's budget for bringing one deal's reminders up to date.
MAX_QUERIES = 15


def _busy_deal(rep, customer) -> Deal:
    """A deal with something for every app's rules to read: touches, an audit,
    invoices (one overdue, one bounced payment) and a delivery."""
    now = timezone.now()
    today = timezone.localdate()
    deal = DealFactory(
        rep=rep,
        customer=customer,
        stage=Stage.DELIVERED,
        amount=Decimal("3000.00"),
        payment_option="invoice",
        deposit_required=False,
        promised_at=now - datetime.timedelta(days=12),
        delivered_at=now - datetime.timedelta(days=3),
        next_step_date=today,
        expected_delivery_date=today - datetime.timedelta(days=4),
    )
    TouchFactory(deal=deal, happened_at=now - datetime.timedelta(days=5))
    AuditFactory(deal=deal, call_window_start=now - datetime.timedelta(days=6))
    invoice = InvoiceFactory(
        deal=deal, amount=Decimal("1000.00"), due_date=today - datetime.timedelta(days=8)
    )
    InvoiceFactory(deal=deal, amount=Decimal("500.00"), due_date=today)
    PaymentFactory(
        deal=deal, invoice=invoice, amount=Decimal("300.00"), status=PaymentStatus.BOUNCED
    )
    return deal


def test_one_deals_reminders_cost_a_fixed_handful_of_queries(
    rep, customer, django_assert_max_num_queries
):
    deal = _busy_deal(rep, customer)
    with django_assert_max_num_queries(MAX_QUERIES):
        result = services.reminders_scan(deal_ids=[deal.pk])
    kinds = set(Reminder.objects.filter(deal=deal).values_list("kind", flat=True))
    # Every app's rules were applied (pipeline, audits, billing).
    assert {
        ReminderKind.NEXT_STEP_DUE,
        ReminderKind.AUDIT_OVERDUE,
        ReminderKind.PAYMENT_OVERDUE,
        ReminderKind.PAYMENT_DUE,
        ReminderKind.PAYMENT_BOUNCED,
        ReminderKind.SATISFACTION_CHECK,
    } <= kinds
    assert result.created == Reminder.objects.filter(deal=deal).count()
    # And again: nothing new, still the same handful.
    with django_assert_max_num_queries(MAX_QUERIES):
        assert services.reminders_scan(deal_ids=[deal.pk]).created == 0


def test_a_batch_of_deals_costs_the_queries_of_one(rep, customer, django_assert_max_num_queries):
    deals = [_busy_deal(rep, customer) for _ in range(12)]
    with django_assert_max_num_queries(MAX_QUERIES):
        result = services.reminders_evaluate([d.pk for d in deals])
    assert result.deals == 12
    per_deal = {
        d.pk: Reminder.objects.filter(deal=d).count() for d in deals
    }  # every deal got the same reminders as one alone would
    assert len(set(per_deal.values())) == 1 and min(per_deal.values()) >= 6


def test_two_hundred_changed_deals_are_one_queued_drain(
    rep, customer, django_capture_on_commit_callbacks
):
    """A burst of events is a bounded number of messages: one drain, not one per deal."""
    now = timezone.now()
    deals = DealFactory.create_batch(
        200, rep=rep, customer=customer, deposit_required=False, promised_at=now
    )
    with (
        mock.patch.object(tasks.reminders_drain, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True) as announced,
    ):
        for deal in deals:
            deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    assert len(announced) == 200  # each deal announced…
    assert queued.call_count == 1  # …and one message in all
    assert deal_changes_pending() == 200
    result = tasks.reminders_drain()
    assert result["deals"] == 200
    assert deal_changes_pending() == 0
    assert Reminder.objects.filter(kind=ReminderKind.CHECK_IN).count() == 200
    # Taken off the queue: the next change may queue the next drain.
    with (
        mock.patch.object(tasks.reminders_drain, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        deal_changed_on_commit(deal_id=deals[0].pk, actor_id=rep.pk)
    assert queued.call_count == 1


def test_a_drain_that_could_not_be_queued_is_queued_by_the_next_event(
    deal, rep, django_capture_on_commit_callbacks
):
    down = mock.patch.object(tasks.reminders_drain, "apply_async", side_effect=OSError("down"))
    with down, django_capture_on_commit_callbacks(execute=True):
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    with (
        mock.patch.object(tasks.reminders_drain, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        deal_changed_on_commit(deal_id=deal.pk, actor_id=rep.pk)
    assert queued.call_count == 1


def test_a_second_scan_while_one_runs_returns_at_once(rep, customer):
    DealFactory(rep=rep, customer=customer, next_step_date=timezone.localdate())
    assert services.job_start(tasks.SCAN)  # another worker is scanning
    assert tasks.reminders_scan() == {"skipped": "another scan is running"}
    assert not Reminder.objects.exists()


def test_a_scan_whose_worker_died_is_taken_over_after_its_lease(rep, customer, settings):
    deal = DealFactory(rep=rep, customer=customer, next_step_date=timezone.localdate())
    schedules_wake(now=timezone.now(), deal_ids=[deal.pk])  # its moment came
    services.job_start(tasks.SCAN)
    # The killed worker's lease runs out.
    Job.objects.filter(name=tasks.SCAN).update(
        running_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    result = tasks.reminders_scan()
    assert result["by time"]["created"] >= 1
    job = Job.objects.get(name=tasks.SCAN)
    assert job.running_until is None and job.last_result == result


def test_the_scan_has_its_own_queue_and_never_expires():
    entry = settings.CELERY_BEAT_SCHEDULE["reminders-scan"]
    assert entry["options"] == {"queue": "heartbeat"}  # no "expires": a late scan still runs
    assert settings.CELERY_TASK_ROUTES["reminders.reminders_scan"] == {"queue": "heartbeat"}


def test_digests_for_many_recipients_are_one_queued_task(rep, other_rep, manager, make_reminder):
    for owner in (rep, other_rep, manager):
        make_reminder(DealFactory(rep=rep), owner=owner)
    with mock.patch.object(tasks.reminders_send_digests, "apply_async") as queued:
        assert tasks.queue_digests()
        assert not tasks.queue_digests()  # one is queued already
    assert queued.call_count == 1
    assert tasks.reminders_send_digests() == 3
    assert len(mail.outbox) == 3


def test_a_digest_claimed_by_a_dead_worker_goes_after_the_lease_not_the_interval(
    rep, deal, make_reminder
):
    make_reminder(deal)
    now = timezone.now()
    recipient = f"user:{rep.pk}"
    # A worker claimed it and was killed before sending.
    lease = datetime.timedelta(seconds=settings.REMINDERS_DIGEST_LEASE_SECONDS)
    ReminderDigest.objects.create(recipient=recipient, claimed_until=now + lease)
    assert services.reminders_send_digest(recipient=recipient, now=now) == 0
    assert recipient not in services.reminders_pending_recipients(now=now)
    later = now + lease + datetime.timedelta(seconds=1)  # not REMINDERS_DIGEST_MINUTES
    assert lease < datetime.timedelta(minutes=settings.REMINDERS_DIGEST_MINUTES)
    assert recipient in services.reminders_pending_recipients(now=later)
    assert services.reminders_send_digest(recipient=recipient, now=later) == 1
    assert len(mail.outbox) == 1
    digest = ReminderDigest.objects.get(recipient=recipient)
    assert digest.last_sent_at == later and digest.claimed_until is None


def test_a_second_bounce_the_same_day_is_at_once_too(rep, manager, customer):
    """A bounce is "at once" (DOMAIN.md): the hover rule does not push it to tomorrow."""
    deal = DealFactory(rep=rep, customer=customer, payment_option="invoice", deposit_required=False)
    invoice = InvoiceFactory(deal=deal)
    PaymentFactory(deal=deal, invoice=invoice, amount=Decimal("100.00"), status="bounced")
    services.reminders_scan(deal_ids=[deal.pk])
    PaymentFactory(deal=deal, invoice=invoice, amount=Decimal("100.00"), status="bounced")
    services.reminders_scan(deal_ids=[deal.pk])
    bounced = Reminder.objects.filter(kind=ReminderKind.PAYMENT_BOUNCED, owner=rep)
    assert bounced.count() == 2
    assert all(r.state == ReminderState.DUE for r in bounced)
    assert all(r.due_at <= timezone.now() for r in bounced)


def test_the_cut_off_reminder_never_names_a_cut_off_already_past(rep, customer):
    today = timezone.localdate()
    past = today - datetime.timedelta(days=2)
    customer.accounting_cutoff_day = past.day
    customer.save()
    deal = DealFactory(
        rep=rep,
        customer=customer,
        stage=Stage.AUDIT_CONFIRMED,
        payment_option="invoice",
        deposit_required=False,
        promised_at=timezone.now() - datetime.timedelta(days=20),
    )
    services.reminders_scan(deal_ids=[deal.pk])
    for reminder in Reminder.objects.filter(kind=ReminderKind.INVOICE_CUTOFF):
        assert datetime.date.fromisoformat(reminder.occurrence) >= today


def test_the_demo_builds_its_reminders_in_bulk_and_leaves_no_change_behind(
    django_capture_on_commit_callbacks,
):
    from dashboards.management.commands.seed_demo import DEMO_STEPS

    with (
        mock.patch.object(tasks.reminders_drain, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True) as announced,
    ):
        for step in DEMO_STEPS:
            step()
    assert len(announced) > 50  # every demo deal was written through the services…
    assert queued.call_count <= 1  # …and at most one message was queued for them all
    assert deal_changes_pending() == 0
    assert Reminder.objects.filter(state=ReminderState.DUE).exists()
