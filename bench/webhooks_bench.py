"""Benchmark of outgoing webhooks (issue 22), on PostgreSQL and Redis.

    python bench/webhooks_bench.py               # 1,000 events
    python bench/webhooks_bench.py --events 5000

1,000 deals are lost through the real service (``deal_move``): each move
writes its ``deal.lost`` event and delivery in its own transaction and queues
the send after the commit. Then ONE webhooks worker (``--queues=webhooks
--concurrency=2``, as `make run` starts it) is started and delivers them to a local HTTP
receiver (a thread of this process) that verifies every signature with the
standardwebhooks library and counts each event id. Figures printed, with
their target:

- from the worker being ready until every one is delivered     target < 60 s
- events received twice                                        target 0
- when each arrived after the worker was ready (p50, p95, max), and the
  cost of writing a move with its event

Targets live here only; the tests assert behaviour, never timings.
Environment: BENCH_PG (server URL, default postgres://postgres@127.0.0.1:5432),
BENCH_WEBHOOKS_DB (default cleared_bench_webhooks), BENCH_REDIS (default
redis://127.0.0.1:6379/7).
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_WEBHOOKS_DB", "cleared_bench_webhooks")
DB_URL = f"{PG}/{DB_NAME}"
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/7")
VAR = ROOT / "var" / "bench-webhooks"
TARGET_SECONDS = 60


def log(message: str) -> None:
    print(message, flush=True)


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    env = {**os.environ, "DATABASE_URL": DB_URL, "CLEARED_VAR_DIR": str(VAR)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def setup_django() -> None:
    os.environ["DATABASE_URL"] = DB_URL
    os.environ["CLEARED_VAR_DIR"] = str(VAR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The writes queue their sends on the same Redis as the bench's worker.
    os.environ["CELERY_BROKER_URL"] = REDIS
    os.environ["HOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class Receiver:
    """Counts each event id; verifies each signature with the standardwebhooks library."""

    def __init__(self) -> None:
        self.secret = ""
        self.ids: Counter = Counter()
        self.first_seen: dict[str, float] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    ok = True
                except WebhookVerificationError:
                    ok = False
                with receiver.lock:
                    msg_id = headers.get("webhook-id")
                    receiver.ids[msg_id] += 1
                    receiver.first_seen.setdefault(msg_id, time.time())
                    receiver.bad_signatures += not ok
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def start_worker() -> tuple[subprocess.Popen, float]:
    """One webhooks worker as `make run` starts it; returns it and when it was ready."""
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": REDIS,
        "CLEARED_VAR_DIR": str(VAR),
        "HOOKS_ALLOW_PRIVATE_TARGETS": "true",
    }
    path = VAR / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues=webhooks",
         "--concurrency=2", "--loglevel=INFO", "--hostname=bench-webhooks@%h",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=path.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while "ready" not in path.read_text(errors="replace") and time.time() < deadline:
        time.sleep(0.05)
    return process, time.time()


def purge() -> None:
    import redis

    redis.Redis.from_url(REDIS).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    log(f"database {DB_NAME} (fresh), broker {REDIS}")
    ensure_database()
    setup_django()
    purge()

    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth.models import Group
    from django.utils import timezone

    from hooks.models import Delivery, DeliveryState, Event, Subscription
    from pipeline import services
    from pipeline.models import Customer, Deal, Role, User
    from pipeline.stages import Stage

    receiver = Receiver()
    manager = User.objects.create_user("bench-manager", email="m@example.com")
    manager.groups.add(Group.objects.get_or_create(name=Role.MANAGER)[0])
    rep = User.objects.create_user("bench-rep", first_name="Riley", manager=manager)
    rep.groups.add(Group.objects.get_or_create(name=Role.REP)[0])
    subscription = Subscription.objects.create(
        owner=manager, url=receiver.url, events=["deal.lost"]
    )
    receiver.secret = subscription.secret
    customer = Customer.objects.create(name="Acme", phone="+1 555 0100", owner=rep)
    today = timezone.localdate()
    deals = Deal.objects.bulk_create(
        Deal(
            customer=customer, rep=rep, title=f"Order {n}", amount=Decimal("9600.00"),
            payment_option="invoice", deposit_required=False,
            expected_delivery_date=today + timedelta(days=30), next_step="Call",
            next_step_date=today + timedelta(days=3),
        )
        for n in range(args.events)
    )  # fmt: skip

    log(f"writing {args.events:,} events (deal_move to Lost, one transaction each), no worker yet…")
    started = time.time()
    for deal in deals:
        services.deal_move(
            deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="competitor"
        )
    written = time.time()
    write_ms = 1000 * (written - started) / args.events
    log(f"  written in {written - started:.1f} s ({write_ms:.0f} ms a move, its event included)")

    worker, ready_at = start_worker()
    try:
        deadline = ready_at + 3 * TARGET_SECONDS
        while len(receiver.ids) < args.events and time.time() < deadline:
            time.sleep(0.1)
        all_in = time.time()
        # The rows follow the receiver's answers by a moment.
        while Delivery.objects.exclude(state=DeliveryState.DELIVERED).exists():
            if time.time() > deadline:
                break
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)

    occurred = dict(Event.objects.values_list("id", "occurred_at"))
    # From the worker being ready (the events waited for it in the outbox).
    latencies = sorted(receiver.first_seen[i] - ready_at for i in receiver.first_seen)
    twice = sum(1 for n in receiver.ids.values() if n > 1)
    total = all_in - ready_at
    delivered = Delivery.objects.filter(state=DeliveryState.DELIVERED).count()
    log("")
    log(f"events written                         {len(occurred):,}")
    log(f"distinct event ids received            {len(receiver.ids):,}")
    log(f"delivery rows marked delivered         {delivered:,}")
    log(
        f"worker ready -> all {args.events:,} delivered      {total:.1f} s   (target < {TARGET_SECONDS} s)"
    )
    log(
        f"  throughput                           {len(receiver.ids) / max(total, 1e-9):.0f} deliveries/s"
    )
    log(f"writing a move with its event          {write_ms:.0f} ms")
    log(f"events received twice                  {twice}   (target 0)")
    log(f"bad signatures                         {receiver.bad_signatures}")
    if latencies:
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        log(
            f"ready -> received                      p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
    ok = len(receiver.ids) == args.events and total < TARGET_SECONDS and twice == 0
    log("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
