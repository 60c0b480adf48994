"""Malformed input answers 4xx (or the page with a message), never a 500, and writes nothing."""

import base64
import datetime
import json
import time

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Instalment, PaymentPlan, WebhookEvent
from billing.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from dashboards.board import BoardFilters, board_deals, board_page
from pipeline.stages import Stage
from reminders.models import Reminder, ReminderKind, ReminderState
from tests.billing.money import record
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

SECRET = "test-webhook-secret"
WEBHOOK = "/billing/webhooks/payments/"


@pytest.fixture
def due(deal, rep):
    return Reminder.objects.create(
        deal=deal,
        kind=ReminderKind.NEXT_STEP_DUE,
        owner=rep,
        occurrence="test-1",
        state=ReminderState.DUE,
        why="Next step for today",
        due_at=timezone.now() - datetime.timedelta(minutes=5),
    )


@pytest.mark.parametrize("target", ["not-a-url", "reminder_list", "deal_detail", "javascript"])
@pytest.mark.parametrize("action", ["reminder_done", "reminder_snooze"])
def test_done_or_snooze_with_a_next_that_is_not_a_url_goes_to_the_reminders(
    rep_client, due, action, target
):
    response = rep_client.post(reverse(action, args=[due.pk]), {"next": target, "until": "hour"})
    assert response.status_code == 302
    assert response["Location"] == reverse("reminder_list")


def test_done_with_a_next_path_on_this_site_goes_back_there(rep_client, due):
    response = rep_client.post(reverse("reminder_done", args=[due.pk]), {"next": "/deals/?q=a"})
    assert response["Location"] == "/deals/?q=a"


@pytest.mark.parametrize("url", ["/deals/", "/customers/", "/board/"])
def test_a_nul_byte_in_the_search_box_is_refused_with_a_message(
    rep_client, manager_client, deal, url
):
    client = manager_client if url == "/board/" else rep_client
    response = client.get(url, {"q": "Dana\x00"})
    assert response.status_code == 200
    assert "contain control characters: they were left out" in response.text


def _cursor(value, pk) -> str:
    raw = json.dumps([value, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


WRONG_CURSORS = [
    _cursor({"dt": 5}, 1),
    _cursor({"dt": "2026-13-45T00:00:00"}, 1),
    _cursor({"dec": "not a number"}, 1),
    _cursor({"dec": "NaN"}, 1),
    _cursor({"dec": "1e999999"}, 1),
    _cursor("a string", 1),
    _cursor([1, 2], 1),
    _cursor({"other": 1}, 1),
    _cursor(None, 1),
    _cursor(1.5, 1),
    _cursor("2026-01-01", 10**30),
    _cursor("x\x00y", 1),
    _cursor(True, 1),
]


@pytest.mark.parametrize("sort", ["-age", "amount", "customer", "stage", "next_reminder", "rep"])
@pytest.mark.parametrize("cursor", WRONG_CURSORS)
def test_a_board_cursor_of_the_wrong_type_shows_the_first_page(manager_client, rep, sort, cursor):
    DealFactory(rep=rep)
    for param in ("after", "before"):
        response = manager_client.get("/board/", {"sort": sort, param: cursor})
        assert response.status_code == 200


def test_a_cursor_of_the_wrong_type_is_the_first_page(manager, rep):
    DealFactory(rep=rep)
    filters = BoardFilters.from_query({"sort": "amount"})
    page = board_page(board_deals(manager, filters), filters, after=_cursor({"dt": "x"}, 1))
    assert page.is_first and len(page.deals) == 1


def test_a_payment_plan_due_in_the_year_9999_is_refused_next_to_the_date(rep_client, rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    data = {"count": "3", "first_due": "9999-12-01", "every_days": "30", "note": "kept"}
    response = rep_client.post(reverse("billing:plan_new", args=[deal.pk]), data)
    assert response.status_code == 422
    assert "within a year" in response.text
    assert 'value="kept"' in response.text and "9999-12-01" in response.text
    assert not PaymentPlan.objects.exists() and not Instalment.objects.exists()


# --- the webhook ------------------------------------------------------------------


@pytest.fixture
def _secret(settings):
    settings.CLEARED_WEBHOOK_SECRET = SECRET
    settings.CLEARED_WEBHOOK_TOLERANCE_SECONDS = 300


@pytest.fixture
def payment(rep, customer):
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
    return record(deal, rep, "1000.00", kind="final", method="card")


def _post(raw: bytes, timestamp: str | None = None, payment=None):
    if payment is not None:
        raw = raw.replace(str(PAYMENT_ID).encode(), str(payment.pk).encode())
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(raw, timestamp, SECRET)}
    return Client(enforce_csrf_checks=True).post(
        WEBHOOK, raw, content_type="application/json", headers=headers
    )


PAYMENT_ID = 999_999  # the payment fixture's id, put in by _post


def _event(**changes) -> bytes:
    event = {"id": "evt_1", "type": "payment.cleared", "data": {"payment_id": PAYMENT_ID}}
    event.update(changes)
    return json.dumps(event).encode()


@pytest.mark.usefixtures("_secret")
@pytest.mark.parametrize("timestamp", ["9" * 5000, "1" * 40, "١٢٣", "²", "-1", " 1"])
def test_a_webhook_timestamp_that_is_not_unix_seconds_is_a_400(timestamp, payment):
    response = _post(_event(), timestamp, payment)
    assert response.status_code == 400
    assert "error" in response.json()
    assert not WebhookEvent.objects.exists()


@pytest.mark.usefixtures("_secret")
@pytest.mark.parametrize(
    "raw",
    [
        _event(type=["payment.cleared"]),
        _event(type={"a": 1}),
        _event(id=["evt"]),
        _event(id="evt\x00"),
        _event(data={"payment_id": PAYMENT_ID, "reason": "R01\x00"}),
        _event(extra="\x00"),
        _event(data={"payment_id": 10**40}),
        _event(x="NAN").replace(b'"NAN"', b"NaN"),
        _event(x="INF").replace(b'"INF"', b"-Infinity"),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"id": "evt_1", "type": "payment.cleared", "data": {"payment_id": 999999}, "deep": '
        + b"[" * 500
        + b"]" * 500
        + b"}",
    ],
    ids=lambda raw: raw[:40].decode(errors="replace"),
)
def test_a_signed_but_malformed_webhook_is_a_400_and_writes_nothing(raw, payment):
    response = _post(raw, payment=payment)
    assert response.status_code == 400, response.content[:200]
    assert "error" in response.json()
    assert not WebhookEvent.objects.exists()


@pytest.mark.usefixtures("_secret")
def test_a_well_formed_event_still_applies(payment):
    response = _post(_event(), payment=payment)
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.count() == 1


# --- found by the fuzz test (tests/inputs/test_fuzz.py) -------------------------------


@pytest.mark.parametrize("rep_id", ["²", "9" * 5000, "1" * 19])
def test_a_board_rep_filter_that_is_no_id_is_ignored_with_a_note(manager_client, rep_id):
    response = manager_client.get("/board/", {"rep": rep_id})
    assert response.status_code == 200
    assert "Unknown rep ignored." in response.text


@pytest.mark.parametrize("customer_id", ["²", "9" * 4301, "9" * 30])
def test_a_deal_form_with_a_customer_that_is_no_id_comes_back_with_a_message(
    rep_client, customer_id
):
    response = rep_client.post("/deals/new/", {"customer": customer_id, "title": "kept"})
    assert response.status_code == 200
    assert "Pick one of your own customers." in response.text and 'value="kept"' in response.text
    assert rep_client.get("/deals/terms/", {"customer": customer_id}).status_code == 200


@pytest.mark.parametrize("deal_id", ["²", "9" * 5000])
def test_a_board_move_of_a_deal_that_is_no_id_is_a_404(rep_client, deal, deal_id):
    response = rep_client.post("/deals/board/move/", {"deal": deal_id, "to_stage": "deposit"})
    assert response.status_code == 404
    response = rep_client.post(
        "/deals/board/move/", {"deal": deal.pk, "version": "²", "to_stage": "deposit"}
    )
    assert response.status_code == 302


@pytest.mark.parametrize("month", ["9999-12", "0001-01", "9" * 5000 + "-1"])
def test_a_commission_month_out_of_range_shows_this_month(manager_client, month):
    assert manager_client.get("/billing/commission/", {"month": month}).status_code == 200


@pytest.mark.parametrize("successor", ["²", "6߀¹", "9" * 4400, "•••• 9999"])
def test_a_handover_to_a_successor_that_is_no_id_is_a_404_and_nobody_leaves(
    manager_client, rep, teammate, successor
):
    response = manager_client.post(
        reverse("team_deactivate", args=[teammate.pk]), {"successor": successor}
    )
    assert response.status_code == 404
    teammate.refresh_from_db()
    assert teammate.is_active
