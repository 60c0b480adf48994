"""Reliability with a REAL Celery worker on Redis: killed mid-scan, doubled, broker down.

The worker is a subprocess pointed at this test's database (``transactional_db``,
so it sees committed rows) and at a Redis: the one in CELERY_BROKER_URL when
that is Redis (CI), else a private ``redis-server`` started for the test. The
test that stops Redis always starts its own, on a private port: the shared
one is never stopped.
"""

import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pipeline.models import Customer, Deal
from reminders import services
from reminders.models import Reminder, ReminderKind, ReminderState

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
PRIVATE_PORT = 6390
STOPPABLE_PORT = 6391


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class RedisServer:
    """A redis-server of the test's own, without persistence."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/5"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed: worker tests must run in CI.")
            pytest.skip("redis-server is not installed.")
        if not _free(self.port):
            pytest.skip(f"port {self.port} is taken: cannot start a private Redis.")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: not _free(self.port), 10, "redis-server to listen")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        _wait(lambda: _free(self.port), 10, "redis-server to stop")


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"Timed out waiting for {what}.")


@pytest.fixture
def database_url() -> str:
    """The URL of the test database, for the worker subprocess."""
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip(
                "The test database is SQLite in memory, which a worker process cannot "
                "open: these tests run on PostgreSQL (DATABASE_URL), as in CI."
            )
        return f"sqlite:///{connection.settings_dict['NAME']}"
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.fixture
def broker_url():
    """CI's Redis (CELERY_BROKER_URL) when it is one, else a private redis-server."""
    configured = os.environ.get("CELERY_BROKER_URL", "")
    if configured.startswith("redis://"):
        _purge(configured)
        yield configured
        _purge(configured)
        return
    server = RedisServer(PRIVATE_PORT)
    server.start()
    yield server.url
    server.stop()


class Sender:
    """Sends tasks by name to one broker, as beat or the web app would.

    The connection is explicit: Celery lets a CELERY_BROKER_URL environment
    variable win over an app's own broker setting.
    """

    def __init__(self, url: str):
        self.url = url
        self.app = Celery("cleared-tests", set_as_current=False)

    def send_task(self, name: str, args: tuple = ()) -> None:
        with self.app.connection_for_write(self.url) as conn:
            self.app.send_task(name, args=args, connection=conn)

    def purge(self) -> None:
        with self.app.connection_for_write(self.url) as conn:
            conn.default_channel.queue_purge("celery")


def _client_app(url: str) -> Sender:
    return Sender(url)


def _purge(url: str) -> None:
    with contextlib.suppress(Exception):
        Sender(url).purge()


class Workers:
    """Celery worker subprocesses for one test."""

    def __init__(self, tmp_path: Path, database_url: str):
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.processes: list[subprocess.Popen] = []

    def start(self, broker: str, name: str = "w1") -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": broker,
            "CLEARED_VAR_DIR": str(self.tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
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

    def log(self, name: str = "w1") -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)


@pytest.fixture
def workers(tmp_path, database_url):
    running = Workers(tmp_path, database_url)
    yield running
    running.stop_all()


def _deals_due(rep, count: int) -> list[int]:
    """``count`` deals whose only reminder is a next step due yesterday."""
    customer = Customer.objects.create(name="Acme", phone="+1 555 0100", owner=rep)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    now = timezone.now()
    deals = Deal.objects.bulk_create(
        Deal(
            customer=customer,
            rep=rep,
            title=f"Order {n}",
            amount="100.00",
            payment_option="invoice",
            deposit_required=False,
            expected_delivery_date=yesterday + datetime.timedelta(days=30),
            next_step="Call back",
            next_step_date=yesterday,
            promised_at=now - datetime.timedelta(days=10),
        )
        for n in range(count)
    )
    return [deal.pk for deal in deals]


def _expected_count(deal_ids: list[int]) -> int:
    return len(deal_ids) * 2  # a next step due yesterday and a post-sale check-in


def _assert_each_reminder_once() -> None:
    duplicated = (
        Reminder.objects.values("deal", "kind", "occurrence")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert list(duplicated) == []


def _all_due(expected: int):
    def check() -> bool:
        return Reminder.objects.filter(state=ReminderState.DUE).count() == expected

    return check


def test_a_worker_killed_mid_scan_leaves_every_reminder_exactly_once(rep, workers, broker_url):
    deal_ids = _deals_due(rep, 1500)
    expected = _expected_count(deal_ids)
    app = _client_app(broker_url)
    first = workers.start(broker_url, "w1")
    app.send_task("reminders.reminders_scan")
    _wait(lambda: "reminders_scan" in workers.log("w1").split("ready", 1)[-1], 30, "the scan")
    workers.kill(first)  # SIGKILL, wherever the scan had got to
    killed_at = Reminder.objects.count()
    _assert_each_reminder_once()

    workers.start(broker_url, "w2")
    app.send_task("reminders.reminders_scan")  # the next beat
    _wait(_all_due(expected), 60, f"{expected} due reminders (had {killed_at} at the kill)")
    _assert_each_reminder_once()
    assert Reminder.objects.count() == expected
    assert services.reminders_scan().created == 0


def test_two_beats_and_a_doubled_task_make_no_duplicates(rep, workers, broker_url):
    deal_ids = _deals_due(rep, 300)
    expected = _expected_count(deal_ids)
    app = _client_app(broker_url)
    for _ in range(4):  # two beats, each delivering its scan twice
        app.send_task("reminders.reminders_scan")
    for deal_id in deal_ids[:20]:
        app.send_task("reminders.reminders_refresh_deal", args=(deal_id, None))
    workers.start(broker_url, "w1")
    workers.start(broker_url, "w2")
    _wait(_all_due(expected), 60, f"{expected} due reminders")
    _wait(
        lambda: not Reminder.objects.filter(notified_at__isnull=True).exists(),
        60,
        "the digest to go out",
    )
    _assert_each_reminder_once()
    assert Reminder.objects.count() == expected
    # One digest for the one recipient, however many workers were handed it.
    assert Reminder.objects.values("notified_at").distinct().count() == 1


def test_with_redis_stopped_the_web_app_works_and_the_scan_catches_up_after(
    rep, workers, database_url, monkeypatch
):
    from config.celery import app as web_app

    server = RedisServer(STOPPABLE_PORT)
    server.start()
    # The web app's own broker becomes this private Redis (the environment
    # variable is what Celery reads first), with fresh connection pools.
    monkeypatch.setenv("CELERY_BROKER_URL", server.url)
    saved_url = web_app.conf.broker_url
    web_app.conf.broker_url = server.url
    web_app._pool = None
    web_app.amqp._producer_pool = None
    try:
        deal_ids = _deals_due(rep, 3)
        app = _client_app(server.url)
        workers.start(server.url, "w1")
        app.send_task("reminders.reminders_scan")
        _wait(_all_due(_expected_count(deal_ids)), 60, "the first scan")

        server.stop()
        client = Client()
        client.force_login(rep)
        home = client.get("/")
        assert home.status_code == 200
        reminder = Reminder.objects.filter(kind=ReminderKind.NEXT_STEP_DUE).first()
        assert reminder.why in home.content.decode()
        done = client.post(reverse("reminder_done", args=[reminder.pk]))
        assert done.status_code == 302
        reminder.refresh_from_db()
        assert reminder.state == ReminderState.DONE
        today = timezone.localdate()
        touch = client.post(
            reverse("touch_new", args=[deal_ids[1]]),
            {
                "kind": "call",
                "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
                "discussed": "Delivery",
                "agreed_to": "A slot",
                "next_step": "Confirm the slot",
                "next_step_date": today.isoformat(),
            },
        )
        assert touch.status_code == 302  # saved, though its reminder could not be queued
        missed = Reminder.objects.filter(deal_id=deal_ids[1], occurrence=today.isoformat())
        assert not missed.exists()

        server.start()
        app.send_task("reminders.reminders_scan")  # beat, once Redis is back
        _wait(missed.exists, 90, "the scan to catch up after Redis came back")
        _assert_each_reminder_once()
    finally:
        web_app.conf.broker_url = saved_url
        web_app._pool = None
        web_app.amqp._producer_pool = None
        server.stop()
