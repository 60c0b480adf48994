"""A payment stuck in "pending" (issue 20, section 6): after CLEARED_PENDING_DAYS the
rep is told, after twice as long the manager too; clearing it resolves them."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import PaymentKind, PaymentMethodKind
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(rep, customer, settings):
    settings.CLEARED_PENDING_DAYS = 10
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    return services.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind=PaymentKind.FINAL,
        method=PaymentMethodKind.CHECK,
        amount=Decimal("300.00"),
        reference="Check 2291",
        at=timezone.now() - datetime.timedelta(days=11),
    )


def _pending_reminders():
    return Reminder.objects.filter(kind=ReminderKind.PAYMENT_PENDING)


def test_a_payment_pending_too_long_tells_the_rep(pending, rep):
    reminders_scan()
    reminder = _pending_reminders().get()
    assert reminder.owner == rep
    assert reminder.state == ReminderState.DUE
    assert "check of $300.00 (Check 2291) has been pending since" in reminder.why


def test_the_manager_hears_of_it_after_twice_as_long(pending, rep, manager):
    reminders_scan(now=timezone.now() + datetime.timedelta(days=10))
    owners = {r.owner for r in _pending_reminders()}
    assert owners == {rep, manager}


def test_a_young_pending_payment_tells_nobody(rep, customer, settings):
    settings.CLEARED_PENDING_DAYS = 10
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    services.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind=PaymentKind.FINAL,
        method=PaymentMethodKind.CHECK,
        amount=Decimal("300.00"),
    )
    reminders_scan()
    assert not _pending_reminders().exists()


def test_clearing_it_resolves_the_reminder(pending, manager):
    reminders_scan()
    services.payment_clear(payment_id=pending.pk, actor=manager)
    reminders_scan()
    reminder = _pending_reminders().get()
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "The payment cleared or bounced."
