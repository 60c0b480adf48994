"""Issue 23: each deal knows its next moment, and the minute's scan looks only there.

The engine writes, whenever it decides a deal, the earliest moment at which a
rule could change its mind (``reminders.schedule``); beat's scan decides the
deals whose moment came and nothing else: no hourly sweep. What the sweep was
a safety net for (an edit in the Django admin) is caught where it happens."""

import datetime
import io
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.utils import timezone

from billing.models import PaymentStatus
from pipeline.events import deal_changes_pending
from pipeline.models import Touch
from pipeline.stages import Stage
from reminders import services, tasks
from reminders.models import DealSchedule, Reminder, ReminderKind, ReminderState
from reminders.rules.base import morning_of
from reminders.schedule import schedules_wake
from tests.conftest import _client_for
from tests.factories import (
    AuditFactory,
    DealFactory,
    InvoiceFactory,
    PaymentFactory,
    TouchFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LOOKAHEAD = datetime.timedelta(hours=24)  # tests/reminders/conftest.py


def _next_at(deal) -> datetime.datetime | None:
    return DealSchedule.objects.get(deal=deal).next_at


def _kinds(deal) -> set[str]:
    return set(Reminder.objects.filter(deal=deal).values_list("kind", flat=True))


def test_a_decided_deal_knows_when_its_next_reminder_comes_within_the_horizon(rep, customer):
    now = timezone.now()
    day = timezone.localdate() + datetime.timedelta(days=5)
    deal = DealFactory(
        rep=rep, customer=customer, deposit_required=False, promised_at=now, next_step_date=day
    )
    services.reminders_evaluate([deal.pk], now=now)
    # The check-in comes first: 24 hours after the promise, within the horizon now.
    assert ReminderKind.CHECK_IN in _kinds(deal)
    # Next: the next step's morning, a day ahead (the lookahead), in the rep's zone.
    assert _next_at(deal) == morning_of(day, rep.time_zone) - LOOKAHEAD


def test_a_deal_no_rule_can_change_by_time_has_no_moment(rep, customer):
    deal = DealFactory(
        rep=rep,
        customer=customer,
        stage=Stage.LOST,
        lost_reason="Went elsewhere",
        deposit_required=False,
    )
    services.reminders_evaluate([deal.pk])
    assert _next_at(deal) is None


def test_the_scan_decides_a_deal_at_its_moment_and_not_before(rep, customer):
    now = timezone.now()
    day = timezone.localdate() + datetime.timedelta(days=3)
    deal = DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        promised_at=now - datetime.timedelta(days=2),
        next_step_date=day,
    )
    services.reminders_evaluate([deal.pk], now=now)
    moment = _next_at(deal)
    assert (
        services.reminders_scan(now=moment - datetime.timedelta(minutes=1), sweep=False).deals == 0
    )
    assert ReminderKind.NEXT_STEP_DUE not in _kinds(deal)
    result = services.reminders_scan(now=moment, sweep=False)
    assert result.deals == 1 and result.created == 1
    made = Reminder.objects.get(deal=deal, kind=ReminderKind.NEXT_STEP_DUE)
    assert made.due_at == morning_of(day, rep.time_zone) and made.state == ReminderState.SCHEDULED
    assert _next_at(deal) > moment  # on to the one after (the stale deal's)


def test_a_lost_deal_is_not_woken_when_its_queued_audits_window_closes(rep, customer):
    """A rule's reminders that the deal's end resolves give it no moment either: the
    escalation of a lost deal's audit would be resolved at once, so never made."""
    now = timezone.now()
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, promised_at=now)
    audit = AuditFactory(deal=deal, call_window_start=now + datetime.timedelta(hours=30))
    services.reminders_evaluate([deal.pk], now=now)
    assert _next_at(deal) is not None
    type(deal).objects.filter(pk=deal.pk).update(stage=Stage.LOST, lost_reason="Went elsewhere")
    services.reminders_evaluate([deal.pk], now=now)
    assert _next_at(deal) is None
    closed = audit.call_window_end + datetime.timedelta(minutes=1)
    assert services.reminders_scan(now=closed, sweep=False).deals == 0
    assert services.reminders_evaluate([deal.pk], now=closed).created == 0  # nothing missed


def test_a_scan_with_nothing_due_costs_the_same_few_queries_however_many_deals(
    rep, customer, django_assert_num_queries
):
    """One probe of the schedule's index and one query probing both of the reminders' two: 2."""
    now = timezone.now()
    first = DealFactory(rep=rep, customer=customer, promised_at=now)
    services.reminders_evaluate([first.pk], now=now)
    with django_assert_num_queries(2):
        assert services.reminders_scan(now=now, sweep=False).deals == 0
    many = [DealFactory(rep=rep, customer=customer, promised_at=now) for _ in range(25)]
    services.reminders_evaluate([d.pk for d in many], now=now)
    assert DealSchedule.objects.filter(next_at__isnull=False).count() == 26
    with django_assert_num_queries(2):
        assert services.reminders_scan(now=now, sweep=False).deals == 0


def test_after_an_outage_every_moment_missed_is_simply_due(rep, customer):
    """No scan ran for five days: the first one after decides every deal whose moment
    passed, over the whole catch-up window, and what fell due meanwhile is due."""
    now = timezone.now()
    day = timezone.localdate() + datetime.timedelta(days=2)
    deal = DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        promised_at=now - datetime.timedelta(days=2),
        next_step_date=day,
        expected_delivery_date=day,
    )
    services.reminders_evaluate([deal.pk], now=now)
    later = now + datetime.timedelta(days=5)
    services.reminders_scan(now=later, sweep=False)
    states = dict(Reminder.objects.filter(deal=deal).values_list("kind", "state"))
    assert states[ReminderKind.NEXT_STEP_DUE] == ReminderState.DUE
    assert states[ReminderKind.DELIVERY_OVERDUE] == ReminderState.DUE
    assert _next_at(deal) > later


def _deals_with_clocks(rep, customer) -> list:
    """Deals whose reminders come by time alone, over weeks: every kind of clock."""
    now = timezone.now()
    today = timezone.localdate()
    customer.accounting_cutoff_day = (today + datetime.timedelta(days=9)).day
    customer.save()
    promised = DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=True,
        promised_at=now,
        next_step_date=today + datetime.timedelta(days=2),
        expected_delivery_date=today + datetime.timedelta(days=6),
    )
    AuditFactory(deal=promised, call_window_start=now + datetime.timedelta(hours=30))
    billed = DealFactory(
        rep=rep,
        customer=customer,
        stage=Stage.DELIVERED,
        amount=Decimal("3000.00"),
        payment_option="invoice",
        deposit_required=False,
        promised_at=now - datetime.timedelta(days=1),
        delivered_at=now,
    )
    TouchFactory(deal=billed, happened_at=now)
    InvoiceFactory(
        deal=billed, amount=Decimal("1000.00"), due_date=today + datetime.timedelta(days=4)
    )
    PaymentFactory(deal=billed, amount=Decimal("200.00"), status=PaymentStatus.PENDING)
    return [promised, billed]


def test_the_schedule_misses_nothing_a_full_decision_would_make(rep, customer):
    """Six weeks, a scan every five hours by the schedule alone; after each, deciding
    every deal afresh finds nothing to create or resolve: the schedule woke every
    deal whenever some rule would change its mind."""
    deals = _deals_with_clocks(rep, customer)
    ids = [d.pk for d in deals]
    start = timezone.now()
    services.reminders_evaluate(ids, now=start)
    made = 0
    for step in range(1, 6 * 7 * 24 // 5):
        now = start + datetime.timedelta(hours=5 * step)
        made += services.reminders_scan(now=now, sweep=False).created
        afresh = services.reminders_evaluate(ids, now=now)
        missed = Reminder.objects.filter(deal__in=ids, updated_at=now).values_list(
            "kind", "occurrence", "state", "resolution"
        )
        assert (afresh.created, afresh.resolved) == (0, 0), f"missed at {now}: {list(missed)}"
    kinds = {k for d in deals for k in _kinds(d)}
    assert {
        ReminderKind.DEPOSIT_MISSING,
        ReminderKind.NEXT_STEP_DUE,
        ReminderKind.DELIVERY_OVERDUE,
        ReminderKind.AUDIT_DUE,
        ReminderKind.AUDIT_OVERDUE,
        ReminderKind.SATISFACTION_CHECK,
        ReminderKind.PAYMENT_DUE,
        ReminderKind.PAYMENT_OVERDUE,
        ReminderKind.PAYMENT_PENDING,
        ReminderKind.STALE_DEAL,
    } <= kinds
    assert made >= len(kinds)


def test_a_person_moving_time_zone_makes_their_deals_due(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, promised_at=timezone.now())
    services.reminders_evaluate([deal.pk])
    assert _next_at(deal) > timezone.now()
    rep.time_zone = "Asia/Tokyo" if rep.time_zone != "Asia/Tokyo" else "Europe/London"
    rep.save()
    assert _next_at(deal) <= timezone.now()


def test_a_data_fix_ends_with_its_deals_made_due(rep, customer):
    """A raw UPDATE bypasses the services: ``manage.py reminders_schedule --deals``
    makes the deals due (``schedules_wake``) and decides them."""
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    other = DealFactory(rep=rep, customer=customer, deposit_required=False)
    services.reminders_evaluate([deal.pk, other.pk])
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    type(deal).objects.filter(pk=deal.pk).update(next_step_date=yesterday)
    assert services.reminders_scan(sweep=False).deals == 0  # nothing knows yet
    out = io.StringIO()
    call_command("reminders_schedule", "--deals", str(deal.pk), stdout=out)
    assert "1 deals made due" in out.getvalue()
    assert "1 of 1 due deals decided" in out.getvalue()
    assert ReminderKind.NEXT_STEP_DUE in _kinds(deal)
    assert _next_at(other) > timezone.now()  # left alone


def test_deals_written_in_bulk_are_made_due_with_one_statement(rep, customer):
    """A seed or a restore writes deals past the services: ``schedules_wake`` gives
    every deal (or a rep's) a row, due now."""
    deals = [DealFactory(rep=rep, customer=customer) for _ in range(3)]
    now = timezone.now()
    assert schedules_wake(now=now) == 3
    assert set(DealSchedule.objects.values_list("next_at", flat=True)) == {now}
    assert services.reminders_scan(now=now, sweep=False).deals == 3
    assert all(_next_at(d) is None or _next_at(d) > now for d in deals)


# --- an edit in the Django admin ------------------------------------------------------


class _Form(HTMLParser):
    """The fields of the admin's change form as a browser would post them."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def test_an_edit_in_the_admin_gets_its_reminders_at_the_next_scan(rep, customer):
    """An operator moves a deal's next step to yesterday in the Django admin: the
    next minute's scan (no sweep) makes its reminder, due at once."""
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    services.reminders_scan(deal_ids=[deal.pk])
    assert ReminderKind.NEXT_STEP_DUE not in _kinds(deal)
    operator = _client_for(UserFactory(username="root", is_staff=True, is_superuser=True))
    url = f"/admin/pipeline/deal/{deal.pk}/change/"
    form = _Form()
    form.feed(operator.get(url).text)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    data = {**form.data, "next_step_date": yesterday.isoformat(), "next_step": "Call back"}
    response = operator.post(url, data)
    assert response.status_code == 302, response.text[:2000]
    deal.refresh_from_db()
    assert deal.next_step_date == yesterday
    assert deal_changes_pending() == 1  # the admin's edit is in the outbox
    tasks.reminders_scan()
    reminder = Reminder.objects.get(deal=deal, kind=ReminderKind.NEXT_STEP_DUE)
    assert reminder.state == ReminderState.DUE and reminder.owner == rep
    assert deal_changes_pending() == 0


def test_touches_deleted_in_bulk_in_the_admin_get_their_deals_reminders_at_the_next_scan(
    rep, customer
):
    """An operator deletes a deal's two touches at once ("Delete selected" on the
    changelist): the deal goes into the outbox as after one edit, and the next
    minute's scan finds it stale, its last touch gone."""
    # Stale (14 days without a touch) 6 days ago: within the scan's catch-up.
    promised = timezone.now() - datetime.timedelta(days=20)
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, promised_at=promised)
    touches = [TouchFactory(deal=deal), TouchFactory(deal=deal)]
    services.reminders_scan(deal_ids=[deal.pk])
    assert ReminderKind.STALE_DEAL not in _kinds(deal)
    operator = _client_for(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = operator.post(
        "/admin/pipeline/touch/",
        {"action": "delete_selected", "_selected_action": [t.pk for t in touches], "post": "yes"},
    )
    assert response.status_code == 302, response.text[:2000]
    assert not deal.touches.exists()
    assert deal_changes_pending() == 1  # the bulk deletion is in the outbox
    tasks.reminders_scan()
    reminder = Reminder.objects.get(deal=deal, kind=ReminderKind.STALE_DEAL)
    assert reminder.state == ReminderState.DUE and reminder.owner == rep
    assert deal_changes_pending() == 0


def test_a_bulk_deletion_that_fails_leaves_no_log_entry_and_no_deal_in_the_outbox(
    rep, customer, monkeypatch
):
    """The action's log entries (and so the outbox rows they wrote) commit with its
    deletion or not at all, as a single edit's do: the drain never decides a deal
    from the rows as they were before the action."""
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    touches = [TouchFactory(deal=deal), TouchFactory(deal=deal)]

    def fail(self, request, queryset):
        raise RuntimeError("the database went away mid-deletion")

    monkeypatch.setattr(admin.site._registry[Touch].__class__, "delete_queryset", fail)
    operator = _client_for(UserFactory(username="root", is_staff=True, is_superuser=True))
    with pytest.raises(RuntimeError):
        operator.post(
            "/admin/pipeline/touch/",
            {
                "action": "delete_selected",
                "_selected_action": [t.pk for t in touches],
                "post": "yes",
            },
        )
    assert deal.touches.count() == 2
    assert not LogEntry.objects.filter(object_id__in=[str(t.pk) for t in touches]).exists()
    assert deal_changes_pending() == 0
