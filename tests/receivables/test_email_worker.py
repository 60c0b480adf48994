"""Customer emails with REAL Celery workers and a real SMTP server: never two copies.

A worker SIGKILLed while the mail server holds its message (at RCPT, before
DATA) leaves its claim to run out; the next run sends the email once. Two
beats and doubled tasks on two workers send each email once. The workers
send to the test's aiosmtpd server (tests/smtp.py) and the test counts what
it received, by Message-ID.
"""

import collections
import os
import subprocess
import sys
import time

import pytest
from django.db import transaction
from django.utils import timezone

from pipeline.models import Customer, Touch
from pipeline.stages import Stage
from receivables import mail
from receivables.models import CustomerEmail, EmailState
from tests.factories import DealFactory, InvoiceFactory
from tests.reminders.test_worker import BASE_DIR, NEEDS, Workers, _client_app, _wait
from tests.smtp import SmtpServer

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True), *NEEDS]

LEASE_SECONDS = 3


class MailWorkers(Workers):
    """Workers whose email goes to the test's SMTP server, with a short claim lease."""

    def __init__(self, tmp_path, database_url: str, smtp: SmtpServer):
        super().__init__(tmp_path, database_url)
        self.smtp = smtp

    def start(self, broker: str, name: str = "w1") -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": broker,
            "CLEARED_VAR_DIR": str(self.tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CLEARED_EMAIL_LEASE_SECONDS": str(LEASE_SECONDS),
            **self.smtp.env(),
        }
        log = (self.tmp_path / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool=solo", "--without-heartbeat", "--without-mingle",
                "--without-gossip", "--loglevel=INFO", f"--hostname={name}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        _wait(lambda: "ready" in self.log(name), 60, f"worker {name} to be ready")
        return process


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_workers(tmp_path, database_url, smtp):
    running = MailWorkers(tmp_path, database_url, smtp)
    yield running
    running.stop_all()


def _queued_invoice_emails(rep, count: int) -> list[CustomerEmail]:
    """``count`` invoices, each with its invoice email queued (rows only: no task sent)."""
    customer = Customer.objects.create(
        name="Acme", phone="+1 555 0100", owner=rep, billing_email="ap@acme.example"
    )
    rows = []
    with transaction.atomic():  # invoice numbers come from a locked sequence
        for _ in range(count):
            deal = DealFactory(
                rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED
            )
            invoice = InvoiceFactory(deal=deal)
            rows.append(mail._new_row(invoice, kind="invoice"))
    return CustomerEmail.objects.bulk_create(rows)


def _assert_each_sent_once(smtp: SmtpServer, emails: list[CustomerEmail]) -> None:
    ids = collections.Counter(message["Message-ID"] for message in smtp.received())
    assert set(ids) == {email.message_id for email in emails}
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    assert CustomerEmail.objects.filter(state=EmailState.SENT).count() == len(emails)
    assert Touch.objects.count() == len(emails)  # one touch per email on the timelines


def test_a_worker_killed_mid_send_never_sends_twice(rep, mail_workers, smtp, broker_url):
    emails = _queued_invoice_emails(rep, 3)
    app = _client_app(broker_url)
    smtp.hold_seconds = 4  # the server sits on the first RCPT: the worker is mid-send
    first = mail_workers.start(broker_url, "w1")
    app.send_task("billing.customer_emails_run")
    _wait(lambda: smtp.rcpt_attempts >= 1, 30, "the worker to be talking to the mail server")
    mail_workers.kill(first)
    assert CustomerEmail.objects.filter(state=EmailState.SENDING).count() == 1
    time.sleep(4.5)  # the server's hold ends on a dead connection: no DATA came
    assert smtp.received() == []

    smtp.hold_seconds = 0
    mail_workers.start(broker_url, "w2")
    time.sleep(LEASE_SECONDS)  # the dead worker's claim runs out
    app.send_task("billing.customer_emails_run")  # the next beat
    _wait(
        lambda: CustomerEmail.objects.filter(state=EmailState.SENT).count() == 3,
        60,
        "every email to be sent",
    )
    _assert_each_sent_once(smtp, emails)
    killed = CustomerEmail.objects.get(attempts=2)  # claimed by w1, then by w2
    assert killed.sent_at is not None


def test_two_beats_and_doubled_tasks_send_each_email_once(rep, mail_workers, smtp, broker_url):
    emails = _queued_invoice_emails(rep, 20)
    app = _client_app(broker_url)
    for _ in range(2):  # two beats, each delivering its run twice
        app.send_task("billing.customer_emails_run")
        app.send_task("billing.customer_emails_run")
    for email in emails[:10]:  # and the click's own tasks, twice
        app.send_task("billing.customer_email_send", args=(email.pk,))
        app.send_task("billing.customer_email_send", args=(email.pk,))
    mail_workers.start(broker_url, "w1")
    mail_workers.start(broker_url, "w2")
    _wait(
        lambda: CustomerEmail.objects.filter(state=EmailState.SENT).count() == 20,
        120,
        "every email to be sent",
    )
    time.sleep(2)  # let every doubled task finish
    _assert_each_sent_once(smtp, emails)
    assert CustomerEmail.objects.filter(attempts=1).count() == 20  # each claimed once


def test_one_worker_sends_a_steady_stream(rep, mail_workers, smtp, broker_url, capsys):
    """The throughput figure for the README: emails a minute, PDF rendered for each."""
    count = 60
    emails = _queued_invoice_emails(rep, count)
    app = _client_app(broker_url)
    mail_workers.start(broker_url, "w1")
    started = time.monotonic()
    app.send_task("billing.customer_emails_run")
    _wait(
        lambda: CustomerEmail.objects.filter(state=EmailState.SENT).count() == count,
        240,
        "every email to be sent",
    )
    seconds = time.monotonic() - started
    _assert_each_sent_once(smtp, emails)
    per_minute = count * 60 / seconds
    with capsys.disabled():
        print(f"\none worker: {count} invoice emails with PDFs in {seconds:.1f} s "
              f"= {per_minute:.0f} a minute ({timezone.now():%Y-%m-%d})")  # fmt: skip
    assert per_minute > 30
