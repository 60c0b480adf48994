"""The customer's answers as reminders (reminders/rules/billing.py): "I've paid" makes the rep
check the money at once; "I'll pay on <day>" is chased the morning after if no money cleared.

These tests describe the rules through ``reminders_scan``: the integrator's port
to the new engine must keep them passing.
"""

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from pipeline.models import Deal
from pipeline.stages import Stage
from receivables import links
from receivables.models import CustomerResponse
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def billed(rep, customer):
    today = timezone.localdate()
    return DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        stage=Stage.DELIVERED,
        amount=Decimal("3000.00"),
        next_step_date=today + datetime.timedelta(days=30),
        expected_delivery_date=today - datetime.timedelta(days=5),
    )


@pytest.fixture
def invoice(billed):
    return InvoiceFactory(
        deal=billed,
        amount=Decimal("1200.00"),
        due_date=timezone.localdate() + datetime.timedelta(days=20),
    )


@pytest.fixture
def link(invoice, rep, customer):
    return links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)


def _paid(link, reference="TR-1"):
    return links.customer_respond(link_id=link.pk, kind="paid", reference=reference)


def _promise(link, day):
    return links.customer_respond(link_id=link.pk, kind="promise", promised_for=day)


def _morning(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(9), tzinfo=LONDON)


def _of(kind):
    return Reminder.objects.filter(kind=kind)


# --- customer says paid ------------------------------------------------------------


def test_ive_paid_makes_the_rep_check_the_money_at_once(link, invoice, rep):
    answer = _paid(link, "Transfer 5521").responses[0]
    reminders_scan()
    reminder = _of(ReminderKind.CUSTOMER_SAYS_PAID).get()
    assert reminder.owner == rep
    assert reminder.deal == invoice.deal
    assert reminder.state == ReminderState.DUE
    assert reminder.due_at == answer.created_at
    assert (
        reminder.occurrence
        == f"i{invoice.pk}@{answer.created_at.astimezone(datetime.UTC):%Y-%m-%d}"
    )
    assert "Dana Whitfield says invoice INV-" in reminder.why
    assert "($1,200.00) is paid, reference “Transfer 5521”" in reminder.why
    assert "check that the money came in — only cleared money counts" in reminder.why


def test_a_second_claim_the_same_day_makes_no_second_reminder(link, invoice):
    _paid(link, "first")
    _paid(link, "second")  # another reference: recorded, but one nag a day
    reminders_scan()
    assert CustomerResponse.objects.count() == 2
    assert _of(ReminderKind.CUSTOMER_SAYS_PAID).count() == 1


def test_cleared_money_resolves_the_check(link, invoice, billed):
    _paid(link)
    reminders_scan()
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("1200.00"), status="cleared")
    reminders_scan()
    reminder = _of(ReminderKind.CUSTOMER_SAYS_PAID).get()
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Paid: cleared money covers the invoice."


def test_pending_money_does_not_resolve_the_check(link, invoice, billed):
    _paid(link)
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("1200.00"), status="pending")
    reminders_scan()
    assert _of(ReminderKind.CUSTOMER_SAYS_PAID).get().is_open


def test_a_claim_on_an_invoice_already_cleared_makes_no_reminder(link, invoice, billed):
    _paid(link)
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("1200.00"), status="cleared")
    reminders_scan()
    assert not _of(ReminderKind.CUSTOMER_SAYS_PAID).exists()


def test_a_claim_older_than_the_catch_up_window_makes_no_reminder(link, settings):
    _paid(link)
    later = timezone.now() + datetime.timedelta(days=settings.REMINDERS_CATCHUP_DAYS + 2)
    reminders_scan(now=later)
    assert not _of(ReminderKind.CUSTOMER_SAYS_PAID).exists()


# --- promise passed ------------------------------------------------------------------


def test_a_promise_is_chased_the_morning_after_the_day(link, invoice, rep):
    day = timezone.localdate() + datetime.timedelta(days=3)
    _promise(link, day)
    reminders_scan()  # today: too early, nothing yet
    assert not _of(ReminderKind.PROMISE_PASSED).exists()
    reminders_scan(now=_morning(day) + datetime.timedelta(hours=1))  # within the lookahead
    reminder = _of(ReminderKind.PROMISE_PASSED).get()
    assert reminder.owner == rep
    assert reminder.occurrence == f"i{invoice.pk}@{day.isoformat()}"
    assert reminder.due_at == _morning(day + datetime.timedelta(days=1))
    assert reminder.state == ReminderState.SCHEDULED
    assert "promised to pay invoice INV-" in reminder.why
    assert "the money has not cleared — chase again. A promise is not a payment." in reminder.why
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)) + datetime.timedelta(minutes=1))
    assert _of(ReminderKind.PROMISE_PASSED).get().state == ReminderState.DUE


def test_a_promise_kept_makes_no_chase(link, invoice, billed):
    day = timezone.localdate() + datetime.timedelta(days=2)
    _promise(link, day)
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("1200.00"), status="cleared")
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    assert not _of(ReminderKind.PROMISE_PASSED).exists()


def test_money_clearing_after_the_chase_was_made_resolves_it(link, invoice, billed):
    day = timezone.localdate()
    _promise(link, day)
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    assert _of(ReminderKind.PROMISE_PASSED).get().is_open
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("1200.00"), status="cleared")
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    reminder = _of(ReminderKind.PROMISE_PASSED).get()
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Paid: cleared money covers the invoice."


def test_a_partial_payment_is_not_a_kept_promise(link, invoice, billed):
    day = timezone.localdate()
    _promise(link, day)
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("200.00"), status="cleared")
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    reminder = _of(ReminderKind.PROMISE_PASSED).get()
    assert reminder.is_open
    assert "($1,000.00)" in reminder.why  # what is left to pay


def test_a_new_date_replaces_the_old_promise(link, invoice):
    first = timezone.localdate() + datetime.timedelta(days=1)
    _promise(link, first)
    reminders_scan(now=_morning(first))  # the first promise's chase is made (scheduled)
    assert _of(ReminderKind.PROMISE_PASSED).get().occurrence.endswith(first.isoformat())
    second = first + datetime.timedelta(days=7)
    _promise(link, second)
    reminders_scan(now=_morning(first))
    old = _of(ReminderKind.PROMISE_PASSED).get()
    assert old.state == ReminderState.RESOLVED
    assert old.resolution == "The customer promised a new date."
    reminders_scan(now=_morning(second + datetime.timedelta(days=1)))
    chased = _of(ReminderKind.PROMISE_PASSED).exclude(pk=old.pk).get()
    assert chased.occurrence.endswith(second.isoformat())
    assert chased.is_open


def test_a_replaced_promise_makes_no_chase_of_its_own(link, invoice):
    first = timezone.localdate() + datetime.timedelta(days=1)
    _promise(link, first)
    _promise(link, first + datetime.timedelta(days=5))
    reminders_scan(now=_morning(first + datetime.timedelta(days=1)))
    assert not _of(ReminderKind.PROMISE_PASSED).exists()


def test_a_statement_promise_chases_each_unpaid_invoice(rep, customer, billed, invoice):
    other = InvoiceFactory(deal=billed, amount=Decimal("300.00"), due_date=timezone.localdate())
    link = links.customer_link_create(customer=customer, created_by=rep)
    day = timezone.localdate()
    _promise(link, day)
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    chased = set(_of(ReminderKind.PROMISE_PASSED).values_list("occurrence", flat=True))
    assert chased == {f"i{invoice.pk}@{day.isoformat()}", f"i{other.pk}@{day.isoformat()}"}


def test_a_lost_deal_ends_both_kinds(link, invoice, billed):
    day = timezone.localdate()
    _paid(link)
    _promise(link, day)
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    assert _of(ReminderKind.CUSTOMER_SAYS_PAID).get().is_open
    Deal.objects.filter(pk=billed.pk).update(stage=Stage.LOST, lost_reason="other")
    reminders_scan(now=_morning(day + datetime.timedelta(days=1)))
    for kind in (ReminderKind.CUSTOMER_SAYS_PAID, ReminderKind.PROMISE_PASSED):
        assert _of(kind).get().state == ReminderState.RESOLVED
