"""The private calendar address: made on the Security page, read with icalendar,
scoped like the pages, revoked or regenerated -> 404."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from audits import services as audit_services
from hooks.models import CalendarFeed
from pipeline.stages import Stage
from receivables import links
from receivables.models import ResponseKind
from reminders import services as reminder_services
from tests.audits.conftest import checklist
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def _address(client) -> str:
    response = client.post(reverse("hooks:calendar_feed_new"), follow=True)
    assert response.status_code == 200
    return re.search(r'id="calendar-url">([^<]+)<', response.text).group(1)


def _read(url: str):
    path = url.split("://", 1)[1].split("/", 1)[1]
    return Client().get("/" + path)


def _events(url: str) -> dict[str, object]:
    response = _read(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return {str(e["SUMMARY"]): e for e in calendar.walk("VEVENT")}


def test_the_security_page_offers_a_calendar_address(rep_client):
    page = rep_client.get(reverse("account_security")).text
    assert "Get my calendar address" in page


def test_a_reps_feed_has_their_next_steps_due_dates_promises_and_reminders(
    rep_client, rep, customer, other_rep
):
    deal = DealFactory(
        rep=rep, customer=customer, next_step="Send the quote", title="Chairs",
        deposit_required=False, stage=Stage.DELIVERED, amount=Decimal("2000.00"),
    )  # fmt: skip
    invoice = InvoiceFactory(
        deal=deal, amount=Decimal("1234.50"), due_date=TODAY() + timedelta(days=5)
    )
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    promised = TODAY() + timedelta(days=3)
    links.customer_respond(link_id=link.pk, kind=ResponseKind.PROMISE, promised_for=promised)
    late = DealFactory(rep=rep, customer=customer, next_step_date=TODAY() - timedelta(days=1))
    reminder_services.reminders_scan(deal_ids=[late.pk])
    DealFactory(rep=other_rep, customer=CustomerFactory(owner=other_rep), next_step="Theirs")

    events = _events(_address(rep_client))
    deal_url = f"/deals/{deal.pk}/"
    summaries = list(events)
    deal.refresh_from_db()  # the customer's answer set its next step
    assert f"Next step: {deal.next_step} — {customer.name}" in events
    assert not [s for s in summaries if "Theirs" in s]  # another rep's deal
    due = events[f"Payment due: {invoice.display_number} — {customer.name}"]
    assert due["DTSTART"].dt == invoice.due_date
    assert str(due["URL"]).endswith(deal_url)
    promise = events[f"Promised to pay: {invoice.display_number} — {customer.name}"]
    assert promise["DTSTART"].dt == promised
    assert any(s.startswith("Next step due:") for s in summaries), summaries


def test_an_auditor_gets_the_audit_call_windows(auditor_client, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    values = checklist()
    audit = audit_services.wrap_up_hand_over(deal_id=deal.pk, rep=rep, **values)
    events = _events(_address(auditor_client))
    call = events[f"Audit call: {customer.name}"]
    assert call["DTSTART"].dt == values["call_window_start"].replace(microsecond=0)
    assert call["DTEND"].dt == values["call_window_end"].replace(microsecond=0)
    assert str(call["URL"]).endswith(reverse("audits:call", args=[audit.pk]))


def test_only_a_hash_of_the_secret_is_stored(rep_client, rep):
    url = _address(rep_client)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert len(token) >= 40
    stored = CalendarFeed.objects.get(user=rep)
    assert token not in stored.token_hash


def test_a_revoked_address_answers_404(rep_client):
    url = _address(rep_client)
    assert _read(url).status_code == 200
    rep_client.post(reverse("hooks:calendar_feed_revoke"))
    assert _read(url).status_code == 404


def test_a_new_address_retires_the_old_one(rep_client):
    old = _address(rep_client)
    new = _address(rep_client)
    assert _read(old).status_code == 404
    assert _read(new).status_code == 200


def test_a_forged_address_answers_404(client):
    assert client.get(reverse("hooks:calendar_feed", args=["x" * 43])).status_code == 404


def test_a_deactivated_persons_address_answers_404(rep_client, rep):
    url = _address(rep_client)
    rep.is_active = False
    rep.save()
    assert _read(url).status_code == 404


def test_the_feed_is_read_only(rep_client):
    url = _address(rep_client)
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert Client().post(path).status_code == 405
