"""The billing kinds: payment due, the overdue ladder (then the manager), payment bounced."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, Payment, PaymentStatus
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.factories import DealFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def _invoice(deal, due_date: datetime.date, amount: str = "1000.00") -> Invoice:
    return InvoiceFactory(deal=deal, amount=Decimal(amount), due_date=due_date)


def _payment(deal, invoice, status: str, amount: str = "1000.00") -> Payment:
    return PaymentFactory(deal=deal, invoice=invoice, amount=Decimal(amount), status=status)


@pytest.fixture
def billed(rep, customer):
    today = timezone.localdate()
    return DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        promised_at=timezone.now() - datetime.timedelta(days=40),
        next_step_date=today + datetime.timedelta(days=5),
        expected_delivery_date=today + datetime.timedelta(days=5),
    )


def test_payment_due_falls_due_on_the_due_date(billed, rep):
    invoice = _invoice(billed, timezone.localdate())
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE)
    assert reminder.owner == rep
    assert reminder.occurrence == f"i{invoice.pk}"
    assert "ask for the money" in reminder.why


def test_the_overdue_ladder_nags_the_rep_then_the_manager(billed, rep, manager):
    _invoice(billed, timezone.localdate() - datetime.timedelta(days=31))
    reminders_scan()
    overdue = Reminder.objects.filter(kind=ReminderKind.PAYMENT_OVERDUE)
    occurrences = {r.occurrence.split("+", 1)[1]: r.owner for r in overdue}
    # +7 and +14 fell before the catch-up window; +30 is in it, for both.
    assert occurrences == {"30": rep, "30/manager": manager}


def test_cleared_money_resolves_the_payment_reminders(billed):
    invoice = _invoice(billed, timezone.localdate())
    reminders_scan()
    _payment(billed, invoice, PaymentStatus.CLEARED)
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE)
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Paid: cleared money covers the invoice."


def test_a_pending_check_does_not_count_as_paid(billed):
    invoice = _invoice(billed, timezone.localdate())
    _payment(billed, invoice, PaymentStatus.PENDING)
    reminders_scan()
    assert Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE).is_open


def test_a_bounced_payment_nags_rep_and_manager_at_once(billed, rep, manager):
    invoice = _invoice(billed, timezone.localdate() + datetime.timedelta(days=10))
    payment = _payment(billed, invoice, PaymentStatus.BOUNCED)  # bounced by the manager
    reminders_scan()
    bounced = Reminder.objects.filter(kind=ReminderKind.PAYMENT_BOUNCED)
    assert {r.owner for r in bounced} == {rep, manager}
    assert {r.occurrence for r in bounced} == {f"p{payment.pk}/rep", f"p{payment.pk}/manager"}
    assert all(r.state == ReminderState.DUE for r in bounced)
    assert "bounced" in bounced.first().why
    reminders_scan()
    assert bounced.count() == 2


def _cutoff_deal(rep, customer, days_to_cutoff: int):
    cutoff = timezone.localdate() + datetime.timedelta(days=days_to_cutoff)
    customer.accounting_cutoff_day = cutoff.day
    customer.save()
    deal = DealFactory(
        rep=rep,
        customer=customer,
        payment_option="invoice",
        stage="delivered",
        delivered_at=timezone.now() - datetime.timedelta(days=1),
        deposit_required=False,
        promised_at=timezone.now() - datetime.timedelta(days=40),
    )
    return deal, cutoff


def test_invoice_cut_off_nags_days_before_the_customers_cut_off(rep, customer, settings):
    settings.REMINDERS_INVOICE_CUTOFF_DAYS = 3
    deal, cutoff = _cutoff_deal(rep, customer, days_to_cutoff=2)
    if cutoff.day != (timezone.localdate() + datetime.timedelta(days=2)).day:
        pytest.skip("cut-off day folded into a short month")
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.INVOICE_CUTOFF)
    assert reminder.deal == deal
    assert reminder.occurrence == cutoff.isoformat()
    assert reminder.state == ReminderState.DUE
    assert "cut-off" in reminder.why


def test_a_cut_off_reminder_created_today_is_never_due_before_it_existed(rep, customer, settings):
    # Cut-off in 2 days, reminder 3 days before: the rule's time is yesterday
    # morning, but the deal only now needs the invoice (issue 15).
    settings.REMINDERS_INVOICE_CUTOFF_DAYS = 3
    _cutoff_deal(rep, customer, days_to_cutoff=2)
    before = timezone.now()
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.INVOICE_CUTOFF)
    assert reminder.due_at >= before
    assert reminder.due_at >= reminder.created_at - datetime.timedelta(seconds=1)
    assert reminder.state == ReminderState.DUE


def test_an_invoice_issued_but_not_emailed_still_needs_sending(rep, customer, settings):
    settings.REMINDERS_INVOICE_CUTOFF_DAYS = 3
    deal, _ = _cutoff_deal(rep, customer, days_to_cutoff=2)
    reminders_scan()
    invoice = _invoice(deal, timezone.localdate() + datetime.timedelta(days=30))
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.INVOICE_CUTOFF)
    assert reminder.state == ReminderState.DUE  # issued is not sent: the customer has an address
    assert customer.billing_address
    # Scheduled for tomorrow, before the cut-off: taken care of, and it says so.
    from receivables import mail

    mail.invoice_email_request(
        invoice_id=invoice.pk, send_on=timezone.localdate() + datetime.timedelta(days=1)
    )
    reminders_scan()
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution.startswith("Scheduled: the invoice is emailed on ")
    assert reminder.resolution.endswith(", before the cut-off.")


def test_emailing_the_invoice_resolves_the_cut_off_reminder_as_sent(rep, customer, settings):
    settings.REMINDERS_INVOICE_CUTOFF_DAYS = 3
    deal, _ = _cutoff_deal(rep, customer, days_to_cutoff=2)
    reminders_scan()
    invoice = _invoice(deal, timezone.localdate() + datetime.timedelta(days=30))
    from receivables import mail

    mail.invoice_email_request(invoice_id=invoice.pk)
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.INVOICE_CUTOFF)
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Sent: the invoice was emailed to the customer."


def test_for_a_customer_without_an_address_issuing_is_sending(rep, customer, settings):
    settings.REMINDERS_INVOICE_CUTOFF_DAYS = 3
    customer.email = customer.billing_email = ""
    customer.save()
    deal, _ = _cutoff_deal(rep, customer, days_to_cutoff=2)
    reminders_scan()
    _invoice(deal, timezone.localdate() + datetime.timedelta(days=30))
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.INVOICE_CUTOFF)
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "The invoice was issued."


def _plan(deal, *dues: tuple[datetime.date, str]):
    from billing.models import Instalment, PaymentPlan

    plan = PaymentPlan.objects.create(deal=deal, created_by=deal.rep)
    return [
        Instalment.objects.create(plan=plan, sequence=i, due_date=day, amount=Decimal(amount))
        for i, (day, amount) in enumerate(dues, start=1)
    ]


def test_each_instalment_of_a_plan_is_due_and_chased_on_its_own(billed, rep):
    today = timezone.localdate()
    first, later = _plan(billed, (today, "400.00"), (today + datetime.timedelta(days=30), "600.00"))
    reminders_scan()
    due = Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE)
    assert due.occurrence == f"n{first.pk}" and due.owner == rep
    assert "Instalment 1 of the payment plan" in due.why
    assert not Reminder.objects.filter(occurrence__startswith=f"n{later.pk}").exists()


def test_a_cleared_instalment_resolves_its_reminder(billed):
    (first,) = _plan(billed, (timezone.localdate(), "400.00"))
    reminders_scan()
    PaymentFactory(
        deal=billed,
        instalment=first,
        kind="instalment",
        amount=Decimal("400.00"),
        status=PaymentStatus.CLEARED,
    )
    reminders_scan()
    reminder = Reminder.objects.get(kind=ReminderKind.PAYMENT_DUE)
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "Paid: cleared money covers the instalment."


def test_an_overdue_instalment_climbs_the_ladder_to_the_manager(billed, rep, manager):
    _plan(billed, (timezone.localdate() - datetime.timedelta(days=31), "400.00"))
    reminders_scan()
    overdue = Reminder.objects.filter(kind=ReminderKind.PAYMENT_OVERDUE)
    assert {r.occurrence.split("+", 1)[1]: r.owner for r in overdue} == {
        "30": rep,
        "30/manager": manager,
    }


def test_the_ladder_stays_open_scan_after_scan_while_the_invoice_is_unpaid(billed, rep, manager):
    _invoice(billed, timezone.localdate() - datetime.timedelta(days=31))
    reminders_scan()
    reminders_scan()  # each rung's "paid?" check must not close the other rungs
    overdue = Reminder.objects.filter(kind=ReminderKind.PAYMENT_OVERDUE)
    assert overdue.count() == 2
    assert not overdue.filter(state=ReminderState.RESOLVED).exists()


def test_a_corrected_billing_address_resolves_the_bounce_reminder_at_once(
    rep, rep_client, customer, django_capture_on_commit_callbacks
):
    """A customer edit announces deal_changed for their open deals: the reminder
    waiting on the address is resolved by the drain, not at the next sweep."""
    from unittest import mock

    from reminders import tasks
    from reminders.services import reminders_evaluate

    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    customer.billing_email_bounced_at = timezone.now()
    customer.save()
    reminder = Reminder.objects.create(
        deal=deal,
        kind=ReminderKind.EMAIL_BOUNCED,
        occurrence="e1",
        owner=rep,
        state=ReminderState.DUE,
        why="An email bounced.",
        due_at=timezone.now(),
    )
    reminders_evaluate([deal.pk])
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.DUE  # still bouncing
    drain_now = mock.patch.object(
        tasks.reminders_drain, "apply_async", side_effect=lambda **kw: tasks.reminders_drain.run()
    )
    fields = {
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "billing_email": "accounts-new@example.com",
        "chase_by_email": "on",
    }
    with drain_now, django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(f"/customers/{customer.pk}/edit/", fields)
    assert response.status_code == 302
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.RESOLVED
    assert reminder.resolution == "A new billing address was entered."
