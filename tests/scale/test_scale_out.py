"""Scale-out, proven with real processes: two webs and two workers, one killed mid-way.

The stack is docker-compose.yml's, scaled out (``--scale web=2 --scale
worker=2``): two gunicorn web processes on ports of their own (one with the
connection pool on, one without: both settings under the same work), two
``worker`` replicas on the default queue, the ``heartbeat`` and ``webhooks``
workers and beat, on this test's PostgreSQL database and one Redis
(tests/scale/stack.py). A rep signs in on both webs and works through both:
touches with a next step (reminders), payments (webhook events to a real
receiver, tests/hooks/receiver.py) and invoices emailed to the customer (a real
SMTP server, tests/smtp.py). The worker that is sending the first email is
SIGKILLed while the mail server holds it, before DATA; more work follows
through both webs. Then every reminder the work called for exists once,
every email reached the server once and every webhook event the receiver
once: nothing twice, nothing lost.
"""

import collections
import datetime
import os

import pytest
import redis
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from hooks.models import Delivery, DeliveryState, Subscription
from pipeline.deal_changes import DealChange
from pipeline.models import Customer
from pipeline.stages import Stage
from receivables.models import CustomerEmail, EmailState
from reminders import services as reminders
from reminders.models import OPEN_STATES, Reminder, ReminderKind
from tests.factories import DealFactory, InvoiceFactory
from tests.hooks.conftest import receiver  # noqa: F401 - a fixture
from tests.reminders.test_worker import (  # noqa: F401 - fixtures
    NEEDS,
    _wait,
    broker_url,
    database_url,
)
from tests.scale.stack import Browser, Stack
from tests.smtp import smtp_server  # noqa: F401 - a fixture

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True), *NEEDS]

DEALS = 6
BILLING = "ap@acme.example"
# Next steps are set for tomorrow; a window of three days makes each one's
# reminder exist (scheduled, not yet due) whatever the hour the test runs at.
LOOKAHEAD_HOURS = "72"


@pytest.fixture
def stack(tmp_path, database_url, broker_url, smtp_server, settings):  # noqa: F811 - fixtures above
    _purge_webhooks(broker_url)
    settings.REMINDERS_LOOKAHEAD_HOURS = int(LOOKAHEAD_HOURS)
    running = Stack(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            # The webs share one cache: CI's, or one on the broker's Redis.
            "CACHE_URL": os.environ.get("CACHE_URL") or broker_url.rsplit("/", 1)[0] + "/6",
            "REMINDERS_LOOKAHEAD_HOURS": LOOKAHEAD_HOURS,
            # Beat's runs every 2 s and short leases: a killed worker's claims
            # lapse in seconds, so the test waits seconds, not minutes.
            "REMINDERS_SCAN_SECONDS": "2",
            "REMINDERS_LEASE_SECONDS": "3",
            "CLEARED_EMAIL_RUN_SECONDS": "2",
            "CLEARED_EMAIL_LEASE_SECONDS": "3",
            "HOOKS_RUN_SECONDS": "2",
            "HOOKS_LEASE_SECONDS": "3",
            "HOOKS_TIMEOUT_SECONDS": "2",
            "HOOKS_ALLOW_PRIVATE_TARGETS": "true",
            **smtp_server.env(),
        },
    )
    yield running
    running.stop_all()
    _purge_webhooks(broker_url)


def _purge_webhooks(url: str) -> None:
    """No message of another test's queues reaches this stack's workers."""
    client = redis.Redis.from_url(url)
    client.delete("webhooks", "celery", "heartbeat")


def _deals(rep) -> list:
    """Delivered deals, each with an invoice to email; the customer pays by invoice."""
    customer = Customer.objects.create(
        name="Acme", phone="+1 555 0100", owner=rep, billing_email=BILLING
    )
    with transaction.atomic():  # invoice numbers come from a locked sequence
        deals = [
            DealFactory(rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED)
            for _ in range(DEALS)
        ]
        invoices = [InvoiceFactory(deal=deal) for deal in deals]
    return list(zip(deals, invoices, strict=True))


def _touch(browser: Browser, deal, tomorrow: datetime.date) -> None:
    browser.post(
        f"/deals/{deal.pk}/touches/",
        {
            "kind": "call",
            "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "discussed": "Delivery went well",
            "agreed_to": "They pay the invoice this month",
            "next_step": "Call the accounts team",
            "next_step_date": tomorrow.isoformat(),
        },
    )


def _pay(browser: Browser, deal, n: int) -> None:
    browser.post(
        f"/billing/deals/{deal.pk}/payments/new/",
        {"kind": "instalment", "method": "check", "amount": "100.00", "reference": f"Check {n}"},
    )


def _send_invoice(browser: Browser, invoice) -> None:
    browser.post(reverse("billing:invoice_send", args=[invoice.pk]), {"send_on": ""})


def _settled(expected_events: int) -> bool:
    return (
        CustomerEmail.objects.filter(state=EmailState.SENT).count() == DEALS
        and Delivery.objects.filter(state=DeliveryState.DELIVERED).count() == expected_events
        and not DealChange.objects.exists()
    )


def test_two_webs_and_two_workers_one_killed_mid_send_lose_nothing_and_double_nothing(
    rep,
    manager,
    stack,
    smtp_server,  # noqa: F811 - the fixture imported above
    receiver,  # noqa: F811
):
    smtp = smtp_server
    # Hashed as production hashes (the tests' own hasher is a fast one the
    # web processes do not know).
    rep.password = PBKDF2PasswordHasher().encode("pw", "scale-out-salt")
    rep.save()
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["payment.recorded"]
    )
    receiver.secret = subscription.secret
    work = _deals(rep)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)

    webs = [stack.web("web1", DATABASE_POOL="on"), stack.web("web2", DATABASE_POOL="off")]
    stack.worker("worker1")
    stack.worker("worker2")
    stack.worker("heartbeat", "heartbeat")
    stack.worker("webhooks", "webhooks")
    stack.beat()
    stack.wait_ready(webs)
    browsers = [Browser(base) for base in webs]
    for browser in browsers:
        browser.log_in("rep", "pw")

    # Before the kill: a touch and a payment on every deal, through both webs.
    for i, (deal, _) in enumerate(work):
        _touch(browsers[i % 2], deal, tomorrow)
        _pay(browsers[(i + 1) % 2], deal, i)

    # The first invoice email: the mail server holds it at RCPT, and the
    # worker sending it is killed there, before DATA.
    smtp.hold_to, smtp.hold_seconds = BILLING, 30
    _send_invoice(browsers[0], work[0][1])
    _wait(lambda: smtp.held_from, 30, "a worker to be sending the first invoice email")
    sender = stack.group_of_socket(smtp.held_from[0][1])
    assert sender in ("worker1", "worker2"), f"the email was sent by {sender}"
    stack.kill(sender)
    smtp.hold_seconds = 0

    # After the kill: the other invoices emailed and a second payment on every
    # deal, through both webs, with one worker left.
    for i, (deal, invoice) in enumerate(work):
        if i:
            _send_invoice(browsers[i % 2], invoice)
        _pay(browsers[(i + 1) % 2], deal, DEALS + i)
    events = 2 * DEALS
    _wait(
        lambda: _settled(events),
        60,
        f"{DEALS} invoice emails sent, {events} webhook events delivered and every "
        "changed deal's reminders decided, with one worker killed",
    )
    stack.assert_alive(but=sender)

    # Every email once at the mail server (reminder digests included), none lost.
    received = collections.Counter(m["Message-ID"] for m in smtp.received())
    assert [i for i, n in received.items() if n > 1] == []
    invoice_emails = set(CustomerEmail.objects.values_list("message_id", flat=True))
    assert invoice_emails <= set(received) and len(invoice_emails) == DEALS
    assert CustomerEmail.objects.get(invoice=work[0][1]).attempts == 2  # killed, then sent

    # Every webhook event once at the receiver, none lost.
    seen = receiver.ids()
    assert set(seen) == set(Delivery.objects.values_list("event_id", flat=True))
    assert len(seen) == events and max(seen.values()) == 1
    assert all(r["verified"] for r in receiver.received)

    # Every reminder the touches called for, once; and nothing left undecided:
    # deciding every deal again here creates no reminder the workers missed.
    for deal, _ in work:
        next_steps = Reminder.objects.filter(deal=deal, kind=ReminderKind.NEXT_STEP_DUE)
        assert list(
            next_steps.filter(state__in=OPEN_STATES).values_list("occurrence", flat=True)
        ) == [tomorrow.isoformat()], f"deal {deal.pk}'s next step reminder"
    assert reminders.reminders_evaluate([deal.pk for deal, _ in work]).created == 0
