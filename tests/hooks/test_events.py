"""Every event type, fired by the real service that makes the change, reaches a
real HTTP receiver signed per Standard Webhooks (verified with the library)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audits import services as audit_services
from audits.models import Outcome
from billing import services as billing_services
from hooks import outbox, sources
from hooks.models import Delivery, DeliveryState, Event, EventType, Format, Subscription
from pipeline import services
from pipeline.models import Role
from pipeline.stages import LostReason, Stage
from pipeline.terms import PaymentOption
from receivables import links
from receivables.models import ResponseKind
from reminders import services as reminder_services
from tests.audits.conftest import YES, checklist, record
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory, UserFactory
from tests.hooks.conftest import deliver_all

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def _promise(rep, customer, **kwargs):
    values = {
        "rep": rep,
        "customer": customer,
        "title": "Website redesign",
        "amount": Decimal("9600.00"),
        "payment_option": PaymentOption.UPFRONT,
        "expected_delivery_date": TODAY() + timedelta(days=7),
        "next_step": "Call",
        "next_step_date": TODAY() + timedelta(days=1),
    }
    values.update(kwargs)
    return services.deal_promise(**values)


def _only(receiver, event_type: str) -> dict:
    found = [r for r in receiver.ok() if r["json"]["type"] == event_type]
    assert len(found) == 1, receiver.types()
    assert found[0]["verified"] is True
    return found[0]["json"]


@pytest.fixture
def billed(rep, customer):
    """A delivered invoice deal: billing may invoice it."""
    return DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        stage=Stage.DELIVERED,
        title="Chairs",
        amount=Decimal("2000.00"),
    )


def test_promising_a_deal_sends_deal_promised_signed_with_the_deal_and_its_api_url(
    subscription, receiver, rep, customer, settings
):
    deal = _promise(rep, customer)
    assert deliver_all() == 1
    body = _only(receiver, "deal.promised")
    assert body["data"]["deal_id"] == deal.pk
    assert body["data"]["url"] == f"{settings.CLEARED_SITE_URL}/api/v1/deals/{deal.pk}"
    assert body["data"]["deal"]["title"] == "Website redesign"
    assert body["data"]["deal"]["amount"] == "9600.00"
    sent = receiver.ok()[0]
    assert sent["headers"]["webhook-id"] == Event.objects.get().id
    assert sent["headers"]["webhook-id"].startswith("msg_")
    assert sent["headers"]["webhook-signature"].startswith("v1,")


def test_a_move_sends_stage_changed_with_from_and_to_and_a_loss_sends_deal_lost(
    subscription, receiver, deal, rep
):
    services.deal_move(
        deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.COMPETITOR
    )
    deliver_all()
    changed = _only(receiver, "deal.stage_changed")
    assert changed["data"]["stage_change"]["from"] == "promised"
    assert changed["data"]["stage_change"]["to"] == "lost"
    lost = _only(receiver, "deal.lost")
    assert lost["data"]["stage_change"]["lost_reason"] == "competitor"


def test_payments_send_recorded_cleared_and_bounced(subscription, receiver, deal, rep, manager):
    payment = billing_services.payment_record(
        deal_id=deal.pk, recorded_by=rep, kind="deposit", method="check", amount=Decimal("200.00")
    )
    billing_services.payment_clear(payment_id=payment.pk, actor=manager)
    billing_services.payment_bounce(payment_id=payment.pk, actor=manager, reason="Returned")
    deliver_all()
    assert _only(receiver, "payment.recorded")["data"]["payment"]["status"] == "pending"
    cleared = _only(receiver, "payment.cleared")
    assert cleared["data"]["url"].endswith(f"/api/v1/payments/{payment.pk}")
    assert cleared["data"]["payment"]["amount"] == "200.00"
    assert _only(receiver, "payment.bounced")["data"]["payment"]["reason"] == "Returned"


def test_issuing_an_invoice_sends_invoice_issued(subscription, receiver, billed, rep):
    invoice = billing_services.invoice_issue(deal_id=billed.pk, issued_by=rep)
    deliver_all()
    body = _only(receiver, "invoice.issued")
    assert body["data"]["invoice"]["number"] == invoice.display_number
    assert body["data"]["url"].endswith(f"/api/v1/invoices/{invoice.pk}")


def test_an_invoice_past_its_due_date_sends_invoice_overdue_once_however_often_the_scan_runs(
    subscription, receiver, billed
):
    invoice = InvoiceFactory(deal=billed, due_date=TODAY() - timedelta(days=2))
    sources.hooks_scan()
    sources.hooks_scan()
    deliver_all()
    body = _only(receiver, "invoice.overdue")
    assert body["data"]["invoice"]["id"] == invoice.pk
    assert body["data"]["invoice"]["days_overdue"] == 2


def test_an_audit_call_sends_audit_outcome_recorded(subscription, receiver, rep, customer, auditor):
    deal = DealFactory(
        rep=rep, customer=customer, stage=Stage.DEPOSIT, payment_option=PaymentOption.INVOICE
    )
    audit = audit_services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **checklist())
    record(audit, auditor, Outcome.CONFIRMED, answers=YES)
    deliver_all()
    body = _only(receiver, "audit.outcome_recorded")
    assert body["data"]["audit"]["outcome"] == "confirmed"
    assert body["data"]["deal_id"] == deal.pk
    # The confirmed call moved the deal too.
    assert _only(receiver, "deal.stage_changed")["data"]["stage_change"]["to"] == "audit_confirmed"


def test_a_customers_answer_through_their_link_sends_customer_answered(
    subscription, receiver, billed, rep, customer
):
    invoice = InvoiceFactory(deal=billed, amount=Decimal("1234.50"), due_date=TODAY())
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    links.customer_respond(
        link_id=link.pk, kind=ResponseKind.PROMISE, promised_for=TODAY() + timedelta(days=3)
    )
    deliver_all()
    body = _only(receiver, "customer.answered")
    assert body["data"]["answer"]["kind"] == "promise"
    assert body["data"]["answer"]["invoice"]["number"] == invoice.display_number
    sources.hooks_scan()  # the scan sees the same answer: nothing new
    assert Event.objects.filter(type="customer.answered").count() == 1


def test_a_reminder_falling_due_sends_reminder_due(subscription, receiver, rep, customer):
    deal = DealFactory(
        rep=rep, customer=customer, next_step_date=TODAY() - timedelta(days=1), title="Chairs"
    )
    reminder_services.reminders_scan(deal_ids=[deal.pk])
    sources.hooks_scan()
    deliver_all()
    body = _only(receiver, "reminder.due")
    assert body["data"]["deal_id"] == deal.pk
    assert body["data"]["reminder"]["kind"] == "next_step_due"


def test_another_teams_deal_is_not_sent_to_a_managers_subscription_but_to_an_operators(
    subscription, receiver, other_rep
):
    operator = UserFactory(username="operator", is_superuser=True, role=Role.MANAGER)
    everything = Subscription.objects.create(
        owner=operator, url=receiver.url, events=["deal.promised"], format=Format.JSON
    )
    customer = CustomerFactory(owner=other_rep)
    _promise(other_rep, customer)
    assert list(Delivery.objects.values_list("subscription_id", flat=True)) == [everything.pk]


def test_an_event_nobody_asked_for_writes_nothing(receiver, manager, deal, rep):
    Subscription.objects.create(owner=manager, url=receiver.url, events=["payment.cleared"])
    services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
    assert Event.objects.count() == 0


def test_the_subscriptions_wanting_an_event_are_read_afresh_at_each_write(
    receiver, manager, rep, customer
):
    wants = Subscription.objects.create(
        owner=manager, url=receiver.url, events=[EventType.DEAL_PROMISED]
    )
    Subscription.objects.create(owner=manager, url=receiver.url, events=["payment.cleared"])
    Subscription.objects.create(
        owner=manager, url=receiver.url, events=[EventType.DEAL_PROMISED], is_active=False
    )
    assert [s.pk for s in outbox.wanting(EventType.DEAL_PROMISED)] == [wants.pk]
    assert outbox.wanting(EventType.DEAL_LOST) == []
    _promise(rep, customer)
    assert Event.objects.filter(type=EventType.DEAL_PROMISED).count() == 1
    Subscription.objects.filter(pk=wants.pk).update(is_active=False)
    with CaptureQueriesContext(connection) as captured:
        _promise(rep, customer, title="Second order")
    assert Event.objects.count() == 1  # the switched-off subscription wants nothing now
    outbox_queries = [q for q in captured.captured_queries if "hooks_subscription" in q["sql"]]
    assert len(outbox_queries) == 1  # nobody wants it: the one compiled question


def test_a_card_number_in_a_payment_reference_never_leaves_in_full(
    subscription, receiver, deal, rep
):
    billing_services.payment_record(
        deal_id=deal.pk,
        recorded_by=rep,
        kind="deposit",
        method="card",
        amount=Decimal("200.00"),
        reference="card 4111 1111 1111 1111",
    )
    deliver_all()
    body = json.dumps(_only(receiver, "payment.recorded"))
    assert "4111 1111 1111 1111" not in body
    assert "1111" in body  # the last four, as masking keeps them


def test_an_event_fails_with_the_change_it_reports(subscription, deal, rep):
    before = (Event.objects.count(), Delivery.objects.count())
    with pytest.raises(RuntimeError), transaction.atomic():
        services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
        assert Event.objects.count() == before[0] + 2  # written with the move
        raise RuntimeError("the writer's transaction rolls back")
    assert (Event.objects.count(), Delivery.objects.count()) == before


def test_one_delivery_per_event_and_subscription_is_a_database_fact(subscription, deal, rep):
    services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
    delivery = Delivery.objects.filter(event__type="deal.lost").get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(event=delivery.event, subscription=subscription)


def test_slack_gets_a_human_line(receiver, manager, rep, customer, deal):
    Subscription.objects.create(
        owner=manager, url=receiver.url, events=["payment.cleared"], format=Format.SLACK
    )
    deal.amount = Decimal("9600.00")
    deal.deposit_required = False
    deal.save()
    payment = billing_services.payment_record(
        deal_id=deal.pk, recorded_by=rep, kind="final", method="check", amount=Decimal("9600.00")
    )
    billing_services.payment_clear(payment_id=payment.pk, actor=manager)
    deliver_all()
    text = json.loads(receiver.received[-1]["body"])["text"]
    assert text.startswith("Riley's deal *Website redesign* payment cleared: $9,600 <http")


def test_teams_gets_a_message_card(receiver, manager, rep, deal):
    Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"], format=Format.TEAMS
    )
    services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="competitor")
    deliver_all()
    card = json.loads(receiver.received[-1]["body"])
    assert card["@type"] == "MessageCard"
    assert card["text"] == "Riley's deal **Website redesign** was lost: Competitor one-upped us"
    assert card["potentialAction"][0]["targets"][0]["uri"].endswith(f"/deals/{deal.pk}/")


def test_delivered_state_is_recorded_with_the_response(subscription, receiver, deal, rep):
    services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
    deliver_all()
    delivery = Delivery.objects.filter(event__type="deal.lost").get()
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.response_code == 200
    assert json.loads(delivery.body)["type"] == "deal.lost"


def test_the_scan_writes_nothing_for_a_deal_no_subscriber_may_see(
    subscription, receiver, other_rep
):
    customer = CustomerFactory(owner=other_rep)
    deal = DealFactory(rep=other_rep, customer=customer, deposit_required=False)
    InvoiceFactory(deal=deal, due_date=TODAY() - timedelta(days=2))
    assert sources.hooks_scan()["invoices overdue"] == 0
    assert not Event.objects.filter(type="invoice.overdue").exists()


def test_a_snoozed_reminder_falling_due_again_is_sent_again(subscription, receiver, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, next_step_date=TODAY() - timedelta(days=1))
    reminder_services.reminders_scan(deal_ids=[deal.pk])
    sources.hooks_scan()
    reminder = deal.reminders.get(state="due", kind="next_step_due")
    reminder_services.reminder_snooze(
        reminder=reminder, user=rep, until=timezone.now() + timedelta(minutes=5)
    )
    later = timezone.now() + timedelta(minutes=6)
    reminder_services.reminders_mark_due(now=later)
    sources.hooks_scan(now=later)
    assert Event.objects.filter(type="reminder.due", key__contains=f":{reminder.pk}:").count() == 2
