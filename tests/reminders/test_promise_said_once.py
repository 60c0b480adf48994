"""What the customer said, said once and at once (issue 20, section 5).

"I'll pay on …" tells the rep at once; when the promised day passes, one
reminder says what happened (not three: promise passed, the next step "chase
again", payment due) and offers the chase, which says how late the invoice is.
"""

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from pipeline.stages import Stage
from receivables import links
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


def _morning(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(9), tzinfo=LONDON)


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
    # Due in two days; the customer will promise that very day.
    return InvoiceFactory(
        deal=billed,
        amount=Decimal("1200.00"),
        due_date=timezone.localdate() + datetime.timedelta(days=2),
    )


@pytest.fixture
def link(invoice, rep, customer):
    return links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)


def _promise(link, day):
    return links.customer_respond(link_id=link.pk, kind="promise", promised_for=day)


# The kinds that spoke about one unpaid invoice and its promise.
ABOUT_THE_MONEY = [
    ReminderKind.CUSTOMER_PROMISED,
    ReminderKind.PROMISE_PASSED,
    ReminderKind.NEXT_STEP_DUE,
    ReminderKind.PAYMENT_DUE,
    ReminderKind.PAYMENT_OVERDUE,
]


def _open_on(deal):
    return Reminder.objects.filter(
        deal=deal, kind__in=ABOUT_THE_MONEY, state__in=["scheduled", "due", "snoozed"]
    )


def test_the_rep_is_told_at_once_when_the_customer_promises(link, invoice, rep):
    day = invoice.due_date
    answer = _promise(link, day).responses[0]
    reminders_scan()
    told = Reminder.objects.get(kind=ReminderKind.CUSTOMER_PROMISED)
    assert told.owner == rep
    assert told.state == ReminderState.DUE
    assert told.due_at == answer.created_at
    assert "Dana Whitfield promised, through their link, to pay invoice INV-" in told.why
    assert "($1,200.00)" in told.why


def test_money_in_resolves_the_promise_reminder(link, invoice, billed):
    _promise(link, invoice.due_date)
    reminders_scan()
    PaymentFactory(deal=billed, invoice=invoice, amount=Decimal("1200.00"), status="cleared")
    reminders_scan()
    told = Reminder.objects.get(kind=ReminderKind.CUSTOMER_PROMISED)
    assert told.state == ReminderState.RESOLVED
    assert told.resolution == "Paid: cleared money covers the invoice."


def test_when_the_promised_day_passes_one_reminder_speaks_not_three(link, invoice, billed):
    day = invoice.due_date  # payment due, the promise and "chase again" all meet here
    _promise(link, day)
    reminders_scan()
    for hours in (0, 1, 30, 50):  # the due day's morning, the morning after, and later
        reminders_scan(now=_morning(day) + datetime.timedelta(hours=hours))
    open_kinds = sorted(_open_on(billed).values_list("kind", flat=True))
    assert open_kinds == [ReminderKind.PROMISE_PASSED]
    passed = Reminder.objects.get(kind=ReminderKind.PROMISE_PASSED)
    assert "1 day late" in passed.why
    assert "chase again" in passed.why
    # The one told at once gave way to it.
    told = Reminder.objects.get(kind=ReminderKind.CUSTOMER_PROMISED)
    assert told.state == ReminderState.RESOLVED
    assert not Reminder.objects.filter(kind=ReminderKind.NEXT_STEP_DUE).exists()
    assert not Reminder.objects.filter(kind=ReminderKind.PAYMENT_DUE).exists()


def test_a_payment_due_made_before_the_promise_gives_way_to_it(link, invoice, billed):
    reminders_scan(now=_morning(invoice.due_date))  # "payment due" is made
    assert Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE).is_open
    _promise(link, invoice.due_date + datetime.timedelta(days=3))
    reminders_scan(now=_morning(invoice.due_date))
    due = Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE)
    assert due.state == ReminderState.RESOLVED
    assert due.resolution.startswith("The customer promised to pay on ")


def test_the_chase_a_passed_promise_offers_says_how_late(link, invoice, rep_client):
    _promise(link, invoice.due_date)
    reminders_scan(now=_morning(invoice.due_date) + datetime.timedelta(hours=30))
    passed = Reminder.objects.get(kind=ReminderKind.PROMISE_PASSED)
    assert passed.chase_url == reverse("billing:chase_now", args=[invoice.pk])


def test_the_chase_page_says_days_late_not_due_today(rep_client, billed):
    late = InvoiceFactory(
        deal=billed,
        amount=Decimal("500.00"),
        due_date=timezone.localdate() - datetime.timedelta(days=2),
    )
    response = rep_client.get(reverse("billing:chase_now", args=[late.pk]))
    assert response.status_code == 302
    page = rep_client.get(response["Location"])
    text = page.content.decode()
    assert "2 days late" in text
    assert "is due today" not in text
    assert "was due on" in text


def test_the_reminders_list_offers_email_the_customer(rep_client, link, invoice):
    _promise(link, invoice.due_date)
    reminders_scan(now=_morning(invoice.due_date) + datetime.timedelta(hours=30))
    Reminder.objects.filter(kind=ReminderKind.PROMISE_PASSED).update(
        due_at=timezone.now() - datetime.timedelta(hours=1)
    )
    page = rep_client.get(reverse("reminder_list"))
    assert b"Email the customer" in page.content
    assert reverse("billing:chase_now", args=[invoice.pk]).encode() in page.content
