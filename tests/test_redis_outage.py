"""A Redis outage degrades, it does not break.

The web app is pointed at a redis-server of the test's own (a free port, no
persistence), as both the cache (the board's totals) and Celery's broker, as docker-compose
runs it. Pages and writes of a rep and a manager are tried with Redis up,
with Redis killed, and after it is back: with it down every page still
answers, every write is saved and gives up on the broker in well under a
second, and the cache is used again once Redis returns.
"""

import logging
import socket
import subprocess
import time

import pytest
import redis
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from billing.models import Payment, PaymentStatus
from config import backends
from config.cache import ForgivingRedisCache
from config.celery import app as celery_app
from pipeline.models import Deal, Touch
from pipeline.stages import Stage
from receivables import links
from reminders.models import Job, Reminder, ReminderKind
from reminders.tasks import reminders_scan
from tests import needs
from tests.factories import DealFactory, InvoiceFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_redis("a private redis-server is killed and started again"),
]

# A correctness bound, not a benchmark: before the fix a write waited about
# 6 s on a down broker.
WRITE_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"Timed out waiting for {what}.")


class PrivateRedis:
    """A redis-server started, killed and restarted by the test, on its own port."""

    def __init__(self) -> None:
        self.binary = needs.redis_server()
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: _listening(self.port), "redis-server to listen")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        _wait(lambda: not _listening(self.port), "redis-server to stop")


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def on_private_redis(private_redis, settings, monkeypatch):
    """The cache and the broker on the private Redis, configured as in production."""
    settings.CACHES = {"default": backends.redis_cache(private_redis.url(1))}
    monkeypatch.setattr(ForgivingRedisCache, "RETRY_SECONDS", 0.2)
    broker_url = private_redis.url(0)
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout)
    # Celery reads the environment variable before its own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
    conf.broker_url = broker_url
    conf.broker_transport_options = backends.redis_broker_transport_options()
    conf.broker_connection_timeout = backends.BROKER_CONNECTION_TIMEOUT
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield private_redis
    conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout = saved
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _pages(rep_client: Client, manager_client: Client, deal: Deal) -> dict[str, int]:
    return {
        "rep home": rep_client.get("/").status_code,
        "rep deals": rep_client.get("/deals/").status_code,
        "rep deal page": rep_client.get(deal.get_absolute_url()).status_code,
        "rep pipeline board": rep_client.get("/deals/board/").status_code,
        "rep reminders panel": rep_client.get("/reminders/panel/").status_code,
        "manager home": manager_client.get("/").status_code,
        "manager board": manager_client.get("/board/").status_code,
        "manager deals": manager_client.get("/deals/").status_code,
        "manager deal page": manager_client.get(deal.get_absolute_url()).status_code,
    }


def _timed(call) -> tuple[object, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _writes(rep_client: Client, manager_client: Client, rep) -> dict[str, float]:
    """A touch, a move and a payment by the rep, the payment cleared by the manager."""
    deal = DealFactory(rep=rep, payment_option="upfront", stage=Stage.DEPOSIT)
    touches, payments = Touch.objects.count(), Payment.objects.count()
    seconds = {}
    response, seconds["touch"] = _timed(
        lambda: rep_client.post(
            f"/deals/{deal.pk}/touches/",
            {
                "kind": "call",
                "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
                "discussed": "Delivery",
                "agreed_to": "A slot",
                "next_step": "Confirm the slot",
                "next_step_date": timezone.localdate().isoformat(),
            },
        )
    )
    assert response.status_code == 302
    assert Touch.objects.count() == touches + 1
    version = Deal.objects.get(pk=deal.pk).version
    response, seconds["move"] = _timed(
        lambda: rep_client.post(
            "/deals/board/move/", {"deal": deal.pk, "version": version, "to_stage": "delivered"}
        )
    )
    assert response.status_code == 302
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DELIVERED
    other = DealFactory(rep=rep)
    response, seconds["payment"] = _timed(
        lambda: rep_client.post(
            f"/billing/deals/{other.pk}/payments/new/",
            {"kind": "deposit", "method": "check", "amount": "200.00", "reference": "Check 1"},
        )
    )
    assert response.status_code == 302
    assert Payment.objects.count() == payments + 1
    payment = Payment.objects.latest("pk")
    response, seconds["payment cleared"] = _timed(
        lambda: manager_client.post(
            f"/billing/payments/{payment.pk}/status/", {"to_status": "cleared"}
        )
    )
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLEARED
    return seconds


def test_with_redis_killed_every_page_and_write_works_and_the_cache_comes_back(
    on_private_redis, rep, manager, rep_client, manager_client, caplog
):
    server = on_private_redis
    cache_redis = redis.Redis.from_url(server.url(1))
    broker_redis = redis.Redis.from_url(server.url(0))
    deal = DealFactory(rep=rep)
    everything_answers = dict.fromkeys(_pages(rep_client, manager_client, deal), 200)

    # Redis up: the cache is in it (the pages keep nothing there: they read the
    # database) and the writes' follow-up work is queued in it.
    assert _pages(rep_client, manager_client, deal) == everything_answers
    cache.set("probe", "up")
    assert cache_redis.dbsize() > 0
    up = _writes(rep_client, manager_client, rep)
    assert broker_redis.llen("celery") > 0

    server.kill()
    # The drain queued while Redis was up is lost with it; once its lease is
    # over (reminders.models.Job), the next write tries to queue one again.
    Job.objects.update(queued_until=None)
    with caplog.at_level(logging.WARNING):
        assert _pages(rep_client, manager_client, deal) == everything_answers
        assert cache.get("probe", "missing") == "missing"  # a miss, not an error
        down = _writes(rep_client, manager_client, rep)
        assert _pages(rep_client, manager_client, deal) == everything_answers
        cache.set("probe", "down")
    slow = {write: seconds for write, seconds in down.items() if seconds >= WRITE_SECONDS}
    assert not slow, f"writes waited on the down broker: {slow} (with Redis up: {up})"
    print(f"\nwrite seconds, Redis up: {up}\nwrite seconds, Redis down: {down}")
    # One warning for the cache's outage, not one per call; the lost publishes
    # are each one line, without a traceback.
    cache_warnings = [r for r in caplog.records if r.name == "config.cache"]
    assert len(cache_warnings) == 1
    publish_warnings = [r for r in caplog.records if "Could not queue" in r.getMessage()]
    assert publish_warnings and all(r.exc_info is None for r in publish_warnings)

    # Redis back (empty, as after a restart without persistence): the cache
    # fills again, and the scan, run by beat, makes the reminder the touch
    # made with the broker down could not queue.
    server.start()
    time.sleep(ForgivingRedisCache.RETRY_SECONDS)
    assert cache_redis.dbsize() == 0
    assert _pages(rep_client, manager_client, deal) == everything_answers
    cache.set("probe", "back")
    assert cache_redis.dbsize() > 0
    assert cache.get("a-key-never-set", "missing") == "missing"
    reminders_scan()
    touched = Touch.objects.latest("pk").deal_id
    assert Reminder.objects.filter(
        deal_id=touched,
        kind=ReminderKind.NEXT_STEP_DUE,
        occurrence=timezone.localdate().isoformat(),
    ).exists()


def test_the_customers_link_opens_with_redis_down_and_is_limited_again_when_it_is_back(
    on_private_redis, settings, rep, customer, monkeypatch
):
    """The rate limit counts in the cache: with Redis down the page still answers
    (not limited: it only reads, and answers are de-duplicated); back up, it counts again."""
    settings.CLEARED_LINK_RATE_LIMIT = 2
    # One window for the whole test, even across the moment a new one starts.
    monkeypatch.setattr(links, "_window_slot", lambda window: 1)
    deal = DealFactory(rep=rep, customer=customer, deposit_required=False)
    with transaction.atomic():  # the invoice number's sequence row is locked
        invoice = InvoiceFactory(deal=deal, due_date=timezone.localdate())
    link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
    path = links.customer_link_path(link)
    client = Client()
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 429]
    on_private_redis.kill()
    started = time.monotonic()
    assert [client.get(path).status_code for _ in range(4)] == [200] * 4
    assert time.monotonic() - started < 4 * WRITE_SECONDS
    on_private_redis.start()
    time.sleep(0.3)  # past RETRY_SECONDS: the next call tries Redis again
    cache.clear()
    codes = [client.get(path).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
