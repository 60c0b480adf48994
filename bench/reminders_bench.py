"""Benchmark of the follow-up reminders at scale (issue 5), on PostgreSQL.

    python bench/reminders_bench.py            # builds cleared_bench_reminders once, then measures
    python bench/reminders_bench.py --rebuild  # drops and rebuilds the data set first

Data: 100,000 deals (``seed_scale``: stages, touches, audits, money) and
1,000,000 reminder rows, most of them done (history written with one
INSERT … SELECT). Figures printed, with their targets:

- a scan that finds nothing new (median of 7)         target < 200 ms
- 10,000 reminders falling due at once: marked due and
  their digests sent by ONE Celery worker on Redis      target < 30 s
- the reminders panel request: SQL queries (and time)  target <= 4 queries

Targets live here only; the tests assert behaviour, never timings.
Environment: BENCH_PG (server URL, default postgres://postgres@127.0.0.1:5432),
BENCH_REDIS (default redis://127.0.0.1:6379/6: the reminders' second Redis db).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "cleared_bench_reminders"
DB_URL = f"{PG}/{DB_NAME}"
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/6")
DEALS = 100_000
REMINDERS = 1_000_000
FALLING_DUE = 10_000


def log(message: str) -> None:
    print(message, flush=True)


def manage(*args: str) -> None:
    env = {**os.environ, "DATABASE_URL": DB_URL, "CLEARED_VAR_DIR": str(ROOT / "var" / "bench")}
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def ensure_database(rebuild: bool) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    manage("migrate", "--noinput", "-v0")


def setup_django() -> None:
    os.environ["DATABASE_URL"] = DB_URL
    os.environ["CLEARED_VAR_DIR"] = str(ROOT / "var" / "bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build_data() -> None:
    from django.db import connection

    from pipeline.models import Deal
    from reminders.models import Reminder

    if Deal.objects.count() < DEALS:
        log(f"building {DEALS:,} deals with seed_scale…")
        started = time.monotonic()
        manage("seed_scale", "--deals", str(DEALS))
        log(f"  seed_scale: {time.monotonic() - started:.1f} s")
    missing = REMINDERS - Reminder.objects.count()
    if missing <= 0:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE pipeline_deal SET updated_at = LEAST(stage_changed_at, now() - interval '1 hour')"
            )
    if missing > 0:
        started = time.monotonic()
        # Years of history: one done next-step nag per deal per past week.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO pipeline_reminder
                    (deal_id, kind, occurrence, owner_id, queue, why, due_at, state,
                     notified_at, closed_at, resolved_by_id, resolution, created_at, updated_at)
                SELECT d.id, 'next_step_due', 'history-' || g, d.rep_id, '',
                       'Next step (history)', now() - make_interval(weeks => g + 4), 'done',
                       now() - make_interval(weeks => g + 4), now() - make_interval(weeks => g + 4),
                       d.rep_id, 'Done.', now() - make_interval(weeks => g + 4),
                       now() - make_interval(weeks => g + 4)
                FROM pipeline_deal d CROSS JOIN generate_series(1, %s) g
                ORDER BY g, d.id
                LIMIT %s
                ON CONFLICT DO NOTHING
                """,
                [missing // max(Deal.objects.count(), 1) + 1, missing],
            )
            # As if the data had aged: a deal last changed when it last moved,
            # not when the benchmark loaded it (the quick scan re-checks recent ones).
            cursor.execute(
                "UPDATE pipeline_deal SET updated_at = LEAST(stage_changed_at, now() - interval '1 hour')"
            )
            cursor.execute("ANALYZE")
        log(f"  {missing:,} history reminders in {time.monotonic() - started:.1f} s")


def settle() -> None:
    """The first scan over fresh data creates what the facts call for; then it is quiet."""
    from reminders.services import reminders_scan

    started = time.monotonic()
    result = reminders_scan()
    log(f"settling scan: {result.as_dict()} in {time.monotonic() - started:.1f} s")


def measure_quiet_scan() -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pipeline.models import Deal
    from reminders.models import OPEN_STATES, Reminder
    from reminders.services import reminders_scan

    times = []
    for _ in range(7):
        started = time.perf_counter()
        result = reminders_scan(sweep=False)
        times.append((time.perf_counter() - started) * 1000)
        assert result.created == 0 and result.due == 0, result
    sweeps = []
    for _ in range(3):
        started = time.perf_counter()
        reminders_scan(sweep=True)
        sweeps.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        reminders_scan(sweep=False)
    figures = {
        "deals": Deal.objects.count(),
        "open_deals": Deal.objects.open().count(),
        "reminders": Reminder.objects.count(),
        "open_reminders": Reminder.objects.filter(state__in=OPEN_STATES).count(),
        "quiet_scan_ms_median": round(statistics.median(times), 1),
        "quiet_scan_ms_max": round(max(times), 1),
        "quiet_scan_queries": len(queries.captured_queries),
        "hourly_sweep_ms_median": round(statistics.median(sweeps), 1),
    }
    log(
        f"data: {figures['deals']:,} deals ({figures['open_deals']:,} open), "
        f"{figures['reminders']:,} reminders ({figures['open_reminders']:,} open)"
    )
    log(
        f"scan finding nothing new: median {figures['quiet_scan_ms_median']} ms, "
        f"max {figures['quiet_scan_ms_max']} ms, {figures['quiet_scan_queries']} queries "
        "(target < 200 ms)"
    )
    log(
        f"hourly sweep (whole catch-up window, every open reminder re-checked): "
        f"median {figures['hourly_sweep_ms_median']} ms (no target)"
    )
    return figures


def measure_falling_due() -> dict:
    """10,000 reminders fall due at once; one worker marks them due and mails the digests."""
    from celery import Celery
    from django.db import connection
    from django.utils import timezone

    from pipeline.models import Deal
    from reminders.models import Reminder, ReminderDigest, ReminderKind

    ReminderDigest.objects.all().delete()
    due_at = timezone.now() + __import__("datetime").timedelta(seconds=5)
    # Reminders the rules agree with (an open deal's current next step), so
    # no sweep resolves them: rows for those keys are replaced by bench rows.
    deals = list(
        Deal.objects.open()
        .order_by("id")
        .values_list("id", "rep_id", "next_step_date")[:FALLING_DUE]
    )
    Reminder.objects.filter(
        kind=ReminderKind.NEXT_STEP_DUE, deal_id__in=[d[0] for d in deals]
    ).exclude(occurrence__startswith="history-").delete()
    Reminder.objects.bulk_create(
        [
            Reminder(
                deal_id=deal_id,
                kind=ReminderKind.NEXT_STEP_DUE,
                occurrence=next_step_date.isoformat(),
                owner_id=rep_id,
                why="Benchmark: a next step falling due",
                due_at=due_at,
            )
            for deal_id, rep_id, next_step_date in deals
        ],
        batch_size=2000,
    )
    connection.close()
    sender = Celery("bench", set_as_current=False)
    with sender.connection_for_write(REDIS) as conn:
        conn.default_channel.queue_purge("celery")
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": REDIS,
        "CLEARED_VAR_DIR": str(ROOT / "var" / "bench"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(  # noqa: S603
        # One worker, as `make run` starts it (prefork, two processes).
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=2",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(max(0.0, (due_at - timezone.now()).total_seconds()))
        started = time.monotonic()
        with sender.connection_for_write(REDIS) as conn:
            sender.send_task("reminders.reminders_scan", connection=conn)  # beat's tick
        bench = Reminder.objects.filter(why="Benchmark: a next step falling due")
        marked_at = None
        while time.monotonic() - started < 120:
            due = bench.filter(state="due").count()
            if marked_at is None and due == FALLING_DUE:
                marked_at = time.monotonic() - started
            if due == FALLING_DUE and not bench.filter(notified_at__isnull=True).exists():
                break
            time.sleep(0.2)
        notified_at = time.monotonic() - started
        digests = ReminderDigest.objects.exclude(last_sent_at=None).count()
        figures = {
            "falling_due": FALLING_DUE,
            "marked_due_s": round(marked_at or float("nan"), 2),
            "marked_and_notified_s": round(notified_at, 2),
            "digests_sent": digests,
            "all_notified": not bench.filter(notified_at__isnull=True).exists(),
        }
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        Reminder.objects.filter(why="Benchmark: a next step falling due").delete()
    log(
        f"{FALLING_DUE:,} falling due at once, one worker: all due in {figures['marked_due_s']} s, "
        f"all notified in {figures['marked_and_notified_s']} s in {digests} digests "
        "(target < 30 s)"
    )
    return figures


def measure_panel() -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from pipeline.models import User
    from reminders.models import OPEN_STATES, Reminder

    owner_id = (
        Reminder.objects.filter(state__in=OPEN_STATES, owner__isnull=False)
        .values("owner_id")
        .order_by()
        .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("id"))
        .order_by("-n")
        .values_list("owner_id", flat=True)
        .first()
    )
    user = User.objects.get(pk=owner_id)
    client = Client()
    client.force_login(user)
    url = reverse("reminder_panel")
    headers = {"HTTP_HX_REQUEST": "true"}
    client.get(url, **headers)
    times = []
    for _ in range(15):
        started = time.perf_counter()
        response = client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url, **headers)
    version = response.content.decode().split("?v=", 1)[1].split('"', 1)[0]
    quiet = client.get(url, {"v": version}, **headers)
    figures = {
        "panel_user_open_reminders": Reminder.objects.filter(
            owner=user, state__in=OPEN_STATES
        ).count(),
        "panel_queries": len(queries.captured_queries),
        "panel_ms_median": round(statistics.median(times), 1),
        "panel_quiet_poll_status": quiet.status_code,
    }
    log(
        f"reminders panel for a rep with {figures['panel_user_open_reminders']:,} open: "
        f"{figures['panel_queries']} queries (target <= 4), median {figures['panel_ms_median']} ms; "
        f"a poll with nothing new answers {figures['panel_quiet_poll_status']}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the data set")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    ensure_database(args.rebuild)
    setup_django()
    build_data()
    settle()
    figures = {**measure_quiet_scan(), **measure_panel(), **measure_falling_due()}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    log(json.dumps(figures))


if __name__ == "__main__":
    main()
