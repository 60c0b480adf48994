"""The "Ask my manager" reminder kinds, as reminders/rules/billing.py decides them:
these tests are the spec the integrator's port to the new engine must pass."""

import pytest

from billing import services
from pipeline.models import Deal
from pipeline.stages import Stage
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def asked(rep, deal):
    ask = services.deposit_waiver_ask(deal_id=deal.pk, rep=rep, reason="Ten years a customer")
    reminders_scan(deal_ids=[deal.pk])
    return ask


def test_the_manager_gets_one_exception_asked_due_at_once(asked, manager):
    reminder = Reminder.objects.get(kind=ReminderKind.EXCEPTION_ASKED)
    assert reminder.owner == manager and reminder.deal_id == asked.deal_id
    assert reminder.occurrence == f"x{asked.pk}" and reminder.due_at == asked.asked_at
    assert reminder.state == ReminderState.DUE
    assert reminder.why == f"{asked.rep} asks you to waive the deposit: “Ten years a customer”"
    reminders_scan()
    assert Reminder.objects.filter(kind=ReminderKind.EXCEPTION_ASKED).count() == 1


def test_an_approval_resolves_it_by_the_manager_and_tells_the_rep(asked, rep, manager):
    services.exception_request_decide(request_id=asked.pk, manager=manager, approve=True)
    reminders_scan(deal_ids=[asked.deal_id])
    reminder = Reminder.objects.get(kind=ReminderKind.EXCEPTION_ASKED)
    assert reminder.state == ReminderState.RESOLVED
    assert (reminder.resolution, reminder.resolved_by) == ("Decided: approved.", manager)
    told = Reminder.objects.get(kind=ReminderKind.EXCEPTION_DECIDED)
    asked.refresh_from_db()
    assert (told.owner, told.occurrence, told.due_at) == (rep, f"x{asked.pk}", asked.decided_at)
    assert told.why == f"{manager} waived the deposit: the deal can move on without one."


def test_a_decline_tells_the_rep_with_the_note(asked, manager):
    services.exception_request_decide(
        request_id=asked.pk, manager=manager, approve=False, note="Ask for half"
    )
    reminders_scan(deal_ids=[asked.deal_id])
    told = Reminder.objects.get(kind=ReminderKind.EXCEPTION_DECIDED)
    assert told.why == (
        f"{manager} declined to waive the deposit: “Ask for half” — the deposit is still "
        "required: ask the customer for it."
    )


def test_a_lost_deal_ends_the_asked_reminder(asked):
    Deal.objects.filter(pk=asked.deal_id).update(stage=Stage.LOST, lost_reason="other")
    reminders_scan(deal_ids=[asked.deal_id])
    assert Reminder.objects.get(kind=ReminderKind.EXCEPTION_ASKED).state == ReminderState.RESOLVED


def test_the_decision_stays_for_the_rep_when_the_deal_is_paid_but_not_when_lost(asked, manager):
    services.exception_request_decide(request_id=asked.pk, manager=manager, approve=True)
    Deal.objects.filter(pk=asked.deal_id).update(stage=Stage.PAYMENT_CLEARED)
    reminders_scan(deal_ids=[asked.deal_id])
    told = Reminder.objects.get(kind=ReminderKind.EXCEPTION_DECIDED)
    assert told.state == ReminderState.DUE
    Deal.objects.filter(pk=asked.deal_id).update(stage=Stage.LOST, lost_reason="other")
    reminders_scan(deal_ids=[asked.deal_id])
    told.refresh_from_db()
    assert told.state == ReminderState.RESOLVED
