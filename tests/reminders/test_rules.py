"""Each kind's rule: when it is created, when it falls due, when it is resolved."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from audits.models import Audit, AuditState
from pipeline.models import Deal
from pipeline.stages import Stage
from reminders.models import Reminder, ReminderKind, ReminderQueue, ReminderState
from reminders.services import reminders_scan
from tests.factories import AuditFactory, DealFactory, TouchFactory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


def _only(kind, **filters) -> Reminder:
    return Reminder.objects.get(kind=kind, **filters)


def _morning(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(9), tzinfo=LONDON)


def _quiet_deal(rep, customer, **fields) -> Deal:
    """A deal with nothing to nag about except what the test sets."""
    today = timezone.localdate()
    defaults = {
        "rep": rep,
        "customer": customer,
        "deposit_required": False,
        "next_step_date": today + datetime.timedelta(days=5),
        "expected_delivery_date": today + datetime.timedelta(days=20),
    }
    defaults.update(fields)
    return DealFactory(**defaults)


# --- post-sale check-in -----------------------------------------------------------------


def test_check_in_is_created_when_promised_and_falls_due_a_day_later(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer, promised_at=now - datetime.timedelta(hours=2))
    reminders_scan(now=now)
    check_in = _only(ReminderKind.CHECK_IN, deal=deal)
    assert check_in.owner == rep
    assert check_in.occurrence == "once"
    assert check_in.due_at == deal.promised_at + datetime.timedelta(hours=24)
    assert check_in.state == ReminderState.SCHEDULED
    assert "check in" in check_in.why

    reminders_scan(now=now + datetime.timedelta(hours=23))
    check_in.refresh_from_db()
    assert check_in.state == ReminderState.DUE


def test_check_in_is_resolved_by_a_touch_after_the_promise_day(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer, promised_at=now - datetime.timedelta(hours=30))
    reminders_scan(now=now)
    assert _only(ReminderKind.CHECK_IN, deal=deal).state == ReminderState.DUE
    TouchFactory(deal=deal, happened_at=now - datetime.timedelta(minutes=5))
    reminders_scan(now=now)
    check_in = _only(ReminderKind.CHECK_IN, deal=deal)
    assert check_in.state == ReminderState.RESOLVED
    assert check_in.resolution == "Checked in: a touch was recorded."
    assert check_in.resolved_by == rep


def test_no_check_in_for_a_deal_promised_before_the_catch_up_window(rep, customer, settings):
    now = timezone.now()
    _quiet_deal(rep, customer, promised_at=now - datetime.timedelta(days=30))
    reminders_scan(now=now)
    assert not Reminder.objects.filter(kind=ReminderKind.CHECK_IN).exists()


# --- deposit missing --------------------------------------------------------------------


def test_deposit_missing_falls_due_days_after_the_promise(rep, customer, settings):
    settings.CLEARED_DEPOSIT_EXPECTED_DAYS = 3
    now = timezone.now()
    deal = _quiet_deal(
        rep, customer, deposit_required=True, promised_at=now - datetime.timedelta(days=4)
    )
    reminders_scan(now=now)
    reminder = _only(ReminderKind.DEPOSIT_MISSING, deal=deal)
    assert reminder.state == ReminderState.DUE
    assert reminder.due_at == deal.promised_at + datetime.timedelta(days=3)
    assert "none received" in reminder.why


def test_deposit_missing_is_not_created_when_no_deposit_is_required(rep, customer):
    now = timezone.now()
    _quiet_deal(rep, customer, deposit_required=False, promised_at=now - datetime.timedelta(days=4))
    reminders_scan(now=now)
    assert not Reminder.objects.filter(kind=ReminderKind.DEPOSIT_MISSING).exists()


def test_deposit_arriving_resolves_deposit_missing_naming_who(rep, customer, manager):
    now = timezone.now()
    deal = _quiet_deal(
        rep, customer, deposit_required=True, promised_at=now - datetime.timedelta(days=4)
    )
    reminders_scan(now=now)
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.DEPOSIT)
    reminders_scan(now=now, deal_ids=[deal.pk], actor_id=manager.pk)
    reminder = _only(ReminderKind.DEPOSIT_MISSING, deal=deal)
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Deposit is in."
    assert reminder.resolved_by == manager
    assert reminder.closed_at is not None


def test_waiving_the_deposit_resolves_deposit_missing(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(
        rep, customer, deposit_required=True, promised_at=now - datetime.timedelta(days=4)
    )
    reminders_scan(now=now)
    Deal.objects.filter(pk=deal.pk).update(deposit_required=False)
    reminders_scan(now=now)
    assert _only(ReminderKind.DEPOSIT_MISSING, deal=deal).resolution == "Deposit waived."


# --- delivery overdue -------------------------------------------------------------------


def test_delivery_overdue_falls_due_the_morning_after_the_expected_date(rep, customer):
    now = timezone.now()
    expected = timezone.localdate() - datetime.timedelta(days=3)
    deal = _quiet_deal(rep, customer, expected_delivery_date=expected)
    reminders_scan(now=now)
    reminder = _only(ReminderKind.DELIVERY_OVERDUE, deal=deal)
    assert reminder.occurrence == expected.isoformat()
    assert reminder.due_at == _morning(expected + datetime.timedelta(days=1))
    assert reminder.state == ReminderState.DUE


def test_delivery_resolves_delivery_overdue(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(
        rep, customer, expected_delivery_date=timezone.localdate() - datetime.timedelta(days=3)
    )
    reminders_scan(now=now)
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.DELIVERED, delivered_at=now)
    reminders_scan(now=now)
    assert _only(ReminderKind.DELIVERY_OVERDUE, deal=deal).resolution == "Delivered."


def test_moving_the_expected_date_resolves_the_old_delivery_reminder(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(
        rep, customer, expected_delivery_date=timezone.localdate() - datetime.timedelta(days=3)
    )
    reminders_scan(now=now)
    Deal.objects.filter(pk=deal.pk).update(
        expected_delivery_date=timezone.localdate() + datetime.timedelta(days=10)
    )
    reminders_scan(now=now)
    reminder = _only(ReminderKind.DELIVERY_OVERDUE, deal=deal)
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Expected delivery date moved."


# --- satisfaction check -----------------------------------------------------------------


def test_satisfaction_check_falls_due_days_after_delivery_even_once_paid(rep, customer):
    now = timezone.now()
    delivered = now - datetime.timedelta(days=3)
    deal = _quiet_deal(rep, customer, stage=Stage.PAYMENT_CLEARED, delivered_at=delivered)
    reminders_scan(now=now)
    reminder = _only(ReminderKind.SATISFACTION_CHECK, deal=deal)
    assert reminder.due_at == delivered + datetime.timedelta(days=2)
    assert reminder.state == ReminderState.DUE


def test_a_touch_after_delivery_resolves_the_satisfaction_check(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(
        rep, customer, stage=Stage.DELIVERED, delivered_at=now - datetime.timedelta(days=3)
    )
    reminders_scan(now=now)
    TouchFactory(deal=deal, happened_at=now - datetime.timedelta(hours=1))
    reminders_scan(now=now)
    reminder = _only(ReminderKind.SATISFACTION_CHECK, deal=deal)
    assert reminder.resolution == "Customer contacted after delivery."


# --- next step due ----------------------------------------------------------------------


def test_next_step_due_falls_due_that_morning_in_the_reps_time_zone(rep, customer):
    rep.time_zone = "America/New_York"
    rep.save()
    today = timezone.localdate()
    deal = _quiet_deal(rep, customer, next_step_date=today, next_step="Send the order form")
    now = timezone.now()
    reminders_scan(now=now)
    reminder = _only(ReminderKind.NEXT_STEP_DUE, deal=deal)
    morning = datetime.datetime.combine(
        today, datetime.time(9), tzinfo=ZoneInfo("America/New_York")
    )
    assert reminder.due_at == morning
    assert reminder.why.endswith("Send the order form")


def test_a_new_next_step_resolves_the_old_one_and_nags_about_the_new(rep, customer):
    today = timezone.localdate()
    deal = _quiet_deal(rep, customer, next_step_date=today - datetime.timedelta(days=2))
    now = timezone.now()
    reminders_scan(now=now)
    TouchFactory(deal=deal, next_step_date=today)
    Deal.objects.filter(pk=deal.pk).update(next_step_date=today)
    reminders_scan(now=now)
    old = _only(
        ReminderKind.NEXT_STEP_DUE, deal=deal, occurrence=str(today - datetime.timedelta(2))
    )
    assert old.state == ReminderState.RESOLVED
    assert old.resolution == "A touch set a new next step."
    assert old.resolved_by == rep
    new = _only(ReminderKind.NEXT_STEP_DUE, deal=deal, occurrence=today.isoformat())
    assert new.is_open


def test_closing_the_deal_resolves_its_open_reminders(rep, customer):
    deal = _quiet_deal(rep, customer, next_step_date=timezone.localdate())
    now = timezone.now()
    reminders_scan(now=now)
    Deal.objects.filter(pk=deal.pk).update(stage=Stage.LOST, lost_reason="competitor")
    reminders_scan(now=now)
    reminder = _only(ReminderKind.NEXT_STEP_DUE, deal=deal)
    assert reminder.state == ReminderState.RESOLVED
    assert "closed" in reminder.resolution


# --- stale deal -------------------------------------------------------------------------


def test_a_deal_without_a_touch_for_n_days_goes_stale(rep, customer, settings):
    settings.REMINDERS_STALE_DAYS = 14
    now = timezone.now()
    promised = now - datetime.timedelta(days=20)
    deal = _quiet_deal(rep, customer, promised_at=promised)
    TouchFactory(deal=deal, happened_at=now - datetime.timedelta(days=16))
    reminders_scan(now=now)
    stale = _only(ReminderKind.STALE_DEAL, deal=deal)
    assert stale.due_at == now - datetime.timedelta(days=2)
    assert stale.state == ReminderState.DUE


def test_a_touch_resolves_the_stale_deal_reminder(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer, promised_at=now - datetime.timedelta(days=20))
    reminders_scan(now=now)
    assert _only(ReminderKind.STALE_DEAL, deal=deal).state == ReminderState.DUE
    TouchFactory(deal=deal, happened_at=now)
    reminders_scan(now=now)
    assert _only(ReminderKind.STALE_DEAL, deal=deal).resolution == "A touch was recorded."


def test_a_recently_touched_deal_is_not_stale(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer, promised_at=now - datetime.timedelta(days=20))
    TouchFactory(deal=deal, happened_at=now - datetime.timedelta(days=3))
    reminders_scan(now=now)
    assert not Reminder.objects.filter(kind=ReminderKind.STALE_DEAL).exists()


# --- audits -----------------------------------------------------------------------------


def _audit(deal, start, end, **fields) -> Audit:
    return AuditFactory(deal=deal, call_window_start=start, call_window_end=end, **fields)


def test_audit_due_goes_to_the_audit_queue_when_the_window_opens(rep, customer, auditor):
    now = timezone.now()
    deal = _quiet_deal(rep, customer)
    start = now + datetime.timedelta(hours=1)
    audit = _audit(deal, start, start + datetime.timedelta(hours=1))
    reminders_scan(now=now)
    reminder = _only(ReminderKind.AUDIT_DUE, deal=deal)
    assert reminder.owner is None
    assert reminder.queue == ReminderQueue.AUDIT
    assert reminder.occurrence == f"a{audit.pk}"
    assert reminder.due_at == start
    assert reminder.state == ReminderState.SCHEDULED
    reminders_scan(now=start)
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.DUE


def test_an_audit_window_closed_without_a_call_escalates_to_the_manager(rep, customer, manager):
    now = timezone.now()
    deal = _quiet_deal(rep, customer)
    _audit(deal, now - datetime.timedelta(hours=2), now - datetime.timedelta(minutes=10))
    reminders_scan(now=now)
    overdue = _only(ReminderKind.AUDIT_OVERDUE, deal=deal)
    assert overdue.owner == manager
    assert overdue.state == ReminderState.DUE
    assert "no call attempt" in overdue.why


def test_audits_closed_on_two_deals_each_name_their_own_window(rep, customer, manager):
    # Their sentences are worded only for the reminders made, each from its own facts.
    now = timezone.now()
    audits = [
        _audit(_quiet_deal(rep, customer), now - datetime.timedelta(hours=5), now - ago)
        for ago in (datetime.timedelta(hours=4), datetime.timedelta(minutes=10))
    ]
    reminders_scan(now=now)
    for audit in audits:
        overdue = _only(ReminderKind.AUDIT_OVERDUE, deal=audit.deal)
        closed = audit.call_window_end.astimezone(ZoneInfo(settings.DEFAULT_USER_TIME_ZONE))
        assert f"{closed:%H:%M} with no call attempt" in overdue.why


def test_no_escalation_before_the_window_closes(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer)
    _audit(deal, now - datetime.timedelta(minutes=10), now + datetime.timedelta(minutes=50))
    reminders_scan(now=now)
    assert not Reminder.objects.filter(kind=ReminderKind.AUDIT_OVERDUE).exists()


def test_a_no_answer_resolves_audit_due_and_queues_a_retry(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer)
    audit = _audit(deal, now - datetime.timedelta(minutes=30), now + datetime.timedelta(hours=1))
    reminders_scan(now=now)
    retry_at = now + datetime.timedelta(minutes=30)
    Audit.objects.filter(pk=audit.pk).update(
        state=AuditState.RETRY, retry_at=retry_at, next_call_at=retry_at, no_answer_count=1
    )
    reminders_scan(now=now)
    assert _only(ReminderKind.AUDIT_DUE, deal=deal).resolution == "The audit call was made."
    retry = _only(ReminderKind.AUDIT_RETRY, deal=deal)
    assert retry.queue == ReminderQueue.AUDIT
    assert retry.due_at == retry_at
    assert "No answer" in retry.why


def test_a_call_back_time_is_its_own_reminder(rep, customer):
    now = timezone.now()
    deal = _quiet_deal(rep, customer)
    callback = now + datetime.timedelta(hours=3)
    _audit(
        deal,
        now - datetime.timedelta(hours=1),
        now,
        state=AuditState.CALL_BACK,
        callback_at=callback,
        next_call_at=callback,
    )
    reminders_scan(now=now)
    retry = _only(ReminderKind.AUDIT_RETRY, deal=deal)
    assert retry.due_at == callback
    assert "called back" in retry.why


def test_a_bounce_in_billing_raises_payment_bounced_at_once(
    rep, manager, customer, django_capture_on_commit_callbacks
):
    """No waiting for the next scan: the money write wakes the drain, which brings the
    deal's reminders up to date, even when the bounce moves no stage (a deposit
    bouncing before delivery)."""
    from decimal import Decimal
    from unittest import mock

    from billing import services as billing
    from reminders.tasks import reminders_drain

    deal = _quiet_deal(
        rep,
        customer,
        deposit_required=True,
        payment_option="invoice",
        amount=Decimal("1000.00"),
        promised_at=timezone.now() - datetime.timedelta(days=1),
    )
    deposit = billing.payment_record(
        deal_id=deal.pk, recorded_by=rep, kind="deposit", method="check", amount=Decimal("500.00")
    )
    billing.payment_clear(payment_id=deposit.pk, actor=manager)
    assert not Reminder.objects.filter(kind=ReminderKind.PAYMENT_BOUNCED).exists()
    run_now = mock.patch.object(
        reminders_drain, "apply_async", side_effect=lambda **kwargs: reminders_drain.run()
    )
    with run_now, django_capture_on_commit_callbacks(execute=True):
        billing.payment_bounce(payment_id=deposit.pk, actor=manager, reason="NSF")
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT  # no stage moved
    assert Reminder.objects.filter(kind=ReminderKind.PAYMENT_BOUNCED, deal=deal).exists()
