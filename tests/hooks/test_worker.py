"""Delivery by a REAL Celery worker on its own queue (``webhooks``): killed
mid-delivery it loses nothing, and a receiver answering 500 gets the event again.

The workers are subprocesses on this test's database and a Redis, started and
SIGKILLed as tests/reminders/test_worker.py does.
"""

import subprocess
import sys

import pytest

from hooks.models import Delivery, DeliveryState, Subscription
from pipeline import services
from pipeline.stages import Stage
from tests.factories import DealFactory
from tests.hooks.receiver import Receiver
from tests.reminders.test_worker import (  # noqa: F401 - fixtures
    BASE_DIR,
    NEEDS,
    Sender,
    Workers,
    _wait,
    broker_url,
    database_url,
)

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True), *NEEDS]


class HookWorkers(Workers):
    """Workers on the webhooks queue only, as `make run` and docker-compose start them."""

    def start(self, broker: str, name: str = "w1", **extra: str) -> subprocess.Popen:
        env = self.env(
            broker,
            HOOKS_ALLOW_PRIVATE_TARGETS="true",
            HOOKS_LEASE_SECONDS="3",
            HOOKS_RETRY_BASE_SECONDS="1",
            HOOKS_TIMEOUT_SECONDS="2",
            **extra,
        )
        log = (self.tmp_path / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool=solo", "--without-heartbeat", "--without-mingle",
                "--without-gossip", "--loglevel=INFO", f"--hostname={name}@%h",
                "--queues=webhooks",
            ],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        _wait(lambda: "ready" in self.log(name), 60, f"worker {name} to be ready")
        return process


@pytest.fixture
def hook_workers(tmp_path, database_url):  # noqa: F811 - the fixture imported above
    running = HookWorkers(tmp_path, database_url)
    yield running
    running.stop_all()


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


class Beat(Sender):
    def run(self) -> None:
        with self.app.connection_for_write(self.url) as conn:
            self.app.send_task("hooks.deliveries_run", connection=conn, queue="webhooks")


def _lost_deals(rep, count: int) -> list[str]:
    deals = [DealFactory(rep=rep) for _ in range(count)]
    for deal in deals:  # each move commits, with its event and delivery
        services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other")
    return list(Delivery.objects.values_list("event_id", flat=True))


def _all_delivered() -> bool:
    return not Delivery.objects.exclude(state=DeliveryState.DELIVERED).exists()


def test_a_worker_killed_mid_delivery_loses_nothing_and_each_id_is_seen_once_deduplicated(
    rep,
    manager,
    receiver,
    hook_workers,
    broker_url,  # noqa: F811
):
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"]
    )
    receiver.secret = subscription.secret
    expected = _lost_deals(rep, 12)
    receiver.delay = 5  # the first request hangs: the worker is killed inside it
    beat = Beat(broker_url)
    first = hook_workers.start(broker_url, "w1")
    beat.run()
    _wait(lambda: len(receiver.received) >= 1, 30, "the first delivery to be under way")
    hook_workers.kill(first)
    receiver.delay = 0
    hook_workers.start(broker_url, "w2")
    _wait(_all_delivered, 90, "every delivery after the kill", every=(2, beat.run))
    seen = receiver.ids()
    assert set(seen) == set(expected)  # nothing lost
    assert all(r["verified"] for r in receiver.received)
    # At least once: what was in flight at the kill comes again, under its one id
    # (a receiver keeps the first); nothing a third time.
    assert max(seen.values()) <= 2
    assert hook_workers.log("w1").count("hooks.deliver") >= 1


def test_a_receiver_answering_500_gets_the_event_again_from_the_worker(
    rep,
    manager,
    receiver,
    hook_workers,
    broker_url,  # noqa: F811
):
    Subscription.objects.create(owner=manager, url=receiver.url, events=["deal.lost"])
    (event_id,) = _lost_deals(rep, 1)
    receiver.statuses = [500, 500]
    beat = Beat(broker_url)
    hook_workers.start(broker_url, "w1")
    _wait(_all_delivered, 60, "the delivery to succeed", every=(2, beat.run))
    assert [(r["id"], r["status"]) for r in receiver.received] == [
        (event_id, 500),
        (event_id, 500),
        (event_id, 200),
    ]
    assert Delivery.objects.get().attempts == 3
