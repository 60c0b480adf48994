"""When the invoice must go and what is left to invoice (issue 19): one definition
(``billing.policy.invoice_deadline``, ``billing.policy.left_to_invoice``) that the
deal's money note, the invoice page and the invoice cut-off reminder all name."""

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import PaymentKind, PaymentMethodKind
from billing.policy import cutoff_advice, invoice_deadline
from billing.selectors import deal_money
from pipeline.stages import Stage
from receivables import mail
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_evaluate
from tests.factories import DealFactory, InvoiceFactory

D = datetime.date
LEAD = 3

# (cut-off day, a day some time before, the cut-off aimed at, the day the invoice must go)
DEADLINES = [
    (1, D(2027, 3, 20), D(2027, 4, 1), D(2027, 3, 29)),  # the month before
    (2, D(2027, 3, 20), D(2027, 4, 2), D(2027, 3, 30)),  # the month before
    (2, D(2027, 2, 20), D(2027, 3, 2), D(2027, 2, 27)),  # the month before, a short one
    (28, D(2027, 3, 20), D(2027, 3, 28), D(2027, 3, 25)),  # the same month
]


@pytest.fixture
def lead(settings):
    settings.REMINDERS_INVOICE_CUTOFF_DAYS = LEAD
    return LEAD


@pytest.fixture
def today_is(monkeypatch):
    """Pin ``timezone.localdate()`` (called without a value) to a day."""
    real = timezone.localdate

    def pin(day: datetime.date) -> None:
        def localdate(value=None, timezone=None):
            return real(value, timezone) if value is not None else day

        monkeypatch.setattr("django.utils.timezone.localdate", localdate)

    return pin


def _billed(rep, customer, cutoff_day: int, **fields):
    customer.accounting_cutoff_day = cutoff_day
    customer.billing_email = "accounts@whitfield.example"
    customer.save()
    return DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        stage=Stage.DELIVERED,
        delivered_at=timezone.now() - datetime.timedelta(days=1),
        **fields,
    )


def _morning(day: datetime.date, rep) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(10), ZoneInfo(rep.time_zone))


def _cutoff_reminder(deal, now: datetime.datetime) -> Reminder:
    reminders_evaluate([deal.pk], now=now)
    return Reminder.objects.get(deal=deal, kind=ReminderKind.INVOICE_CUTOFF)


@pytest.mark.parametrize(("cutoff_day", "before", "cutoff", "send_by"), DEADLINES)
def test_the_deadline_is_lead_days_before_the_next_cutoff(
    cutoff_day, before, cutoff, send_by, lead
):
    deadline = invoice_deadline(cutoff_day, before)
    assert (deadline.cutoff, deadline.send_by) == (cutoff, send_by)
    assert not deadline.is_late(before)


@pytest.mark.parametrize(("cutoff_day", "before", "cutoff", "send_by"), DEADLINES)
def test_the_money_note_the_invoice_page_and_the_reminder_name_the_same_day(
    cutoff_day, before, cutoff, send_by, lead, rep, customer, rep_client, today_is
):
    deal = _billed(rep, customer, cutoff_day)
    invoice = InvoiceFactory(deal=deal)
    today_is(before)
    said = f"send it by {send_by:%-d %b} (for the {cutoff:%-d %b} cut-off"
    assert said in cutoff_advice(deal, before)
    assert said in deal_money(deal).cutoff_advice

    page = rep_client.get(reverse("billing:invoice_detail", args=[invoice.pk]))
    html = page.content.decode()
    assert f"Their accounting cut-off is {cutoff:%-d %b}" in html
    assert f"send it by {send_by:%-d %b}" in html
    # The send form starts empty, which is now (issue 20); the day to send by is said beside it.
    send_on = re.search(r'<input[^>]*name="send_on"[^>]*>', html)
    assert send_on is not None and "value=" not in send_on.group(0)

    # The reminder, on another deal of the customer's not invoiced yet.
    reminder = _cutoff_reminder(_billed(rep, customer, cutoff_day), _morning(send_by, rep))
    assert reminder.occurrence == cutoff.isoformat()
    assert reminder.due_at.astimezone(ZoneInfo(rep.time_zone)).date() == send_by
    assert reminder.state == ReminderState.DUE
    assert f"cut-off is {cutoff:%a %-d %b}:" in reminder.why


def test_a_deadline_already_past_is_never_advised_send_it_today_instead(
    lead, rep, customer, rep_client, today_is
):
    # On 7 Dec with a cut-off on the 8th, three days' lead: the 5th has passed.
    today = D(2027, 12, 7)
    deal = _billed(rep, customer, 8)
    invoice = InvoiceFactory(deal=deal)
    today_is(today)
    advice = cutoff_advice(deal, today)
    assert "send it today (for the 8 Dec cut-off)" in advice
    assert "5 Dec" not in advice and "5th" not in advice

    html = rep_client.get(reverse("billing:invoice_detail", args=[invoice.pk])).content.decode()
    assert "send it today" in html and "5 Dec" not in html

    reminder = _cutoff_reminder(_billed(rep, customer, 8), _morning(today, rep))
    assert reminder.occurrence == "2027-12-08"
    assert reminder.state == ReminderState.DUE


def test_the_cutoff_reminder_names_what_is_left_once_a_deposit_is_in_and_resolves_when_sent(
    lead, rep, customer, rep_client
):
    today = timezone.localdate()
    cutoff = today + datetime.timedelta(days=2)
    if cutoff.month != today.month:
        pytest.skip("the cut-off day would fold into next month")
    deal = _billed(rep, customer, cutoff.day, amount=Decimal("1500.00"))
    services.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind=PaymentKind.DEPOSIT,
        method=PaymentMethodKind.BANK_TRANSFER,
        amount=Decimal("300.00"),
    )
    assert services.invoiceable_money(deal) == Decimal("1200.00")
    reminder = _cutoff_reminder(deal, timezone.now())
    assert "$1,200.00 not invoiced" in reminder.why

    invoice = services.invoice_issue(deal_id=deal.pk, issued_by=rep)
    assert invoice.amount == Decimal("1200.00")
    mail.invoice_email_request(invoice_id=invoice.pk)
    reminders_evaluate([deal.pk])
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Sent: the invoice was emailed to the customer."

    # Nothing is left to invoice: "Issue an invoice" is not offered any more.
    assert deal_money(deal).uninvoiced == 0
    page = rep_client.get(deal.get_absolute_url()).content.decode()
    assert reverse("billing:invoice_new", args=[deal.pk]) not in page
