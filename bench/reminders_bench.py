"""Benchmark of the follow-up reminders at scale (issues 5, 12 and 23), on PostgreSQL.

    python bench/reminders_bench.py            # builds cleared_bench_reminders once, then measures
    python bench/reminders_bench.py --rebuild  # drops and rebuilds the data set first
    python bench/reminders_bench.py --outage-seconds 60   # a shorter outage (default 240)
    python bench/reminders_bench.py --deals 1000000 --db bench_1m --only issue23
        # issue 23's figures alone (backfill, minute scan, the hour of scans, 200 imported
        # deals), on a database seeded (or migrated) already with that many deals

Data: --deals deals (100,000 unless told; ``seed_scale``: stages, touches, audits,
money) and ten reminder rows a deal, most of them done (history written with
one INSERT … SELECT; not with --only issue23, which leaves the data as it is).
Figures printed, with their targets (issue 23's: bench/reminders_moments.py):

- the backfill: every deal due after the migration, decided once   (reported)
- beat's minute scan with nothing due (median of 9)   target <= 100 ms
- the hour of minute scans that replaced the sweep    target <= 5 s
- 10,000 reminders falling due at once: marked due and
  their digests sent by ONE Celery worker on Redis      target < 30 s
- the reminders panel request: SQL queries (and time)  target <= 4 queries

Issue 12's engine, each printed beside the figure measured before it (main of
2026-11-29, the engine that compiled every rule's SQL on every call):

- one deal's reminders brought up to date: worker time
  and queries (median over 50 busy deals)             target <= 30 ms, <= 15 queries
                                                      (before: 300-650 ms, 27-28 queries)
- a batch of 200 deals                                target <= 1.5 s (before: ~0.65 s a deal)
- 200 deals imported through /deals/import/, one
  worker: until their 200 post-sale check-ins exist    target <= 5 s (before: 41.6 s)
- worker and beat stopped for --outage-seconds while
  600 deals are imported and 100 reminders fall due:
  the broker's deepest queue, and the time from the
  restart until every reminder exists and is due     target <= a few dozen messages, <= 90 s
                                                      (before: 7,008 messages; 0 of 200 due 3 min
                                                      after the restart)

Targets live here only; the tests assert behaviour, never timings.
Environment: BENCH_PG (server URL, default postgres://postgres@127.0.0.1:5432),
BENCH_REDIS (default redis://127.0.0.1:6379/6: the reminders' second Redis db).
The figures go to --json too; exit status 0 whether a figure missed or not.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reminders_moments as moments  # noqa: E402 - the bench folder is not a package

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
    # The web side (the import) publishes to the same Redis as the bench's worker.
    os.environ["CELERY_BROKER_URL"] = REDIS
    os.environ["LOG_LEVEL"] = "WARNING"
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


def measure_falling_due() -> dict:
    """10,000 reminders fall due at once; one worker marks them due and mails the digests."""
    from celery import Celery
    from django.db import connection
    from django.db.models import Count
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
         "--queues=celery,heartbeat", "--without-heartbeat", "--without-mingle",
         "--without-gossip", "--loglevel=WARNING"],
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
        if marked_at is None:  # say why, rather than a bare failure
            states = dict(bench.values_list("state").annotate(n=Count("id")).order_by())
            log(f"  the bench's reminders by state at the end: {states}")
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
    from django.db import connection, reset_queries
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
    reset_queries()
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


# --- issue 12: the engine, an import, an outage ---------------------------------------


def _worker_env(**extra: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "CELERY_BROKER_URL": REDIS,
        "CLEARED_VAR_DIR": str(ROOT / "var" / "bench"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _start(kind: str, **extra: str) -> subprocess.Popen:
    """A worker as ``make run`` starts it (two processes, both queues), or beat."""
    if kind == "worker":
        args = ["worker", "--concurrency=2", "--queues=celery,heartbeat", "--without-heartbeat",
                "--without-mingle", "--without-gossip", "--loglevel=WARNING"]  # fmt: skip
    else:
        schedule = ROOT / "var" / "bench" / "beat-schedule"
        schedule.parent.mkdir(parents=True, exist_ok=True)  # beat fails on a missing folder
        for old in schedule.parent.glob("beat-schedule*"):
            old.unlink()
        args = ["beat", "--loglevel=WARNING", f"--schedule={schedule}"]
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=_worker_env(**extra),
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def _queued() -> int:
    import redis

    client = redis.Redis.from_url(REDIS)
    return sum(client.llen(key) for key in client.keys("celery*") + client.keys("heartbeat*"))


def _purge() -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    for key in client.keys("celery*") + client.keys("heartbeat*") + client.keys("_kombu*"):
        client.delete(key)


def measure_engine() -> dict:
    """One deal's reminders, then 200 at once, in this process (a worker's work)."""
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from pipeline.models import Deal
    from reminders.services import reminders_evaluate

    busy = list(
        Deal.objects.open()
        .annotate(n=Count("reminders"))
        .order_by("-n", "id")
        .values_list("id", flat=True)[:50]
    )
    wall, cpu, queries = [], [], []
    for deal_id in busy:
        with CaptureQueriesContext(connection) as captured:
            started, started_cpu = time.perf_counter(), time.process_time()
            reminders_evaluate([deal_id])
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        queries.append(len(captured.captured_queries))
    batch = list(Deal.objects.open().order_by("-id").values_list("id", flat=True)[:200])
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        reminders_evaluate(batch, batch=200)
        batch_s = time.perf_counter() - started
    figures = {
        "one_deal_ms_median": round(statistics.median(wall), 1),
        "one_deal_ms_max": round(max(wall), 1),
        "one_deal_cpu_ms_median": round(statistics.median(cpu), 1),
        "one_deal_queries_max": max(queries),
        "batch_200_s": round(batch_s, 3),
        "batch_200_queries": len(captured.captured_queries),
    }
    log(
        f"one deal's reminders (50 busiest open deals): median {figures['one_deal_ms_median']} ms "
        f"(CPU {figures['one_deal_cpu_ms_median']} ms), max {figures['one_deal_ms_max']} ms, "
        f"at most {figures['one_deal_queries_max']} queries "
        "(target <= 30 ms, <= 15 queries; before: 300-650 ms, 27-28 queries)"
    )
    log(
        f"a batch of 200 deals: {figures['batch_200_s']} s, {figures['batch_200_queries']} queries "
        "(target <= 1.5 s; before: 41.6 s of queue for 200 imported deals)"
    )
    return figures


def _import(rows: int, tag: str) -> None:
    from django.test import Client
    from django.utils import timezone

    from pipeline.models import User

    rep = User.objects.filter(groups__name="Rep", is_active=True).order_by("id").first()
    today = timezone.localdate()
    lines = [
        "customer,phone,title,amount,payment_option,expected_delivery_date,next_step,next_step_date"
    ]
    lines += [
        f"Bench {tag}{n},+1 555 01{n % 100:02d},Bench order {tag}{n},100.00,invoice,"
        f"{today + __import__('datetime').timedelta(days=30)},Call,"
        f"{today + __import__('datetime').timedelta(days=7)}"
        for n in range(rows)
    ]
    client = Client()
    client.force_login(rep)
    response = client.post("/deals/import/", {"csv_text": "\n".join(lines) + "\n", "confirm": "1"})
    assert response.status_code == 302, response.content[:500]


def _open_import_page() -> None:
    """The rep opens the import page before pasting the file, as a person does: this
    process is the web server here, and its first request loads every view module
    and the URL resolver (about a second a real server paid at start)."""
    from django.test import Client

    from pipeline.models import User

    rep = User.objects.filter(groups__name="Rep", is_active=True).order_by("id").first()
    client = Client()
    client.force_login(rep)
    assert client.get("/deals/import/").status_code == 200


def _check_ins(tag: str) -> int:
    from reminders.models import Reminder

    return Reminder.objects.filter(
        kind="check_in", deal__title__startswith=f"Bench order {tag}"
    ).count()


def _forget(tag: str) -> None:
    """Remove what a measurement imported, so the next run starts alike."""
    from pipeline.models import Customer, Deal

    deals = Deal.objects.filter(title__startswith=f"Bench order {tag}")
    ids = list(deals.values_list("id", flat=True))
    from reminders.models import Reminder

    Reminder.objects.filter(deal_id__in=ids).delete()
    with __import__("django.db", fromlist=["connection"]).connection.cursor() as cursor:
        for table in ("pipeline_stageevent", "pipeline_touch", "pipeline_dealchange"):
            cursor.execute(f"DELETE FROM {table} WHERE deal_id = ANY(%s)", [ids])  # noqa: S608
    deals.delete()
    Customer.objects.filter(name__startswith=f"Bench {tag}").delete()


def measure_import() -> dict:
    from django.db import connection

    _purge()
    connection.close()
    worker = _start("worker")
    try:
        time.sleep(8)  # the worker is up (or, on a busy machine, still failing to start)
        for _ in range(30):
            if worker.poll() is not None:
                return moments.import_in_process(_import, _check_ins, _forget)
            time.sleep(0.5)
        _open_import_page()
        imported = time.monotonic()  # the import's own time counts
        _import(200, "i")
        while _check_ins("i") < 200 and time.monotonic() - imported < 120:
            time.sleep(0.2)
        took = time.monotonic() - imported
    finally:
        _stop(worker)
    figures = {"import_200_check_ins_s": round(took, 1), "import_200_check_ins": _check_ins("i")}
    _forget("i")
    log(
        f"200 deals imported, one worker: their 200 check-ins existed {figures['import_200_check_ins_s']} s "
        "after the import was sent (target <= 5 s; before: 41.6 s)"
    )
    return figures


def measure_outage(seconds: int) -> dict:
    """Worker and beat stopped while 600 deals are imported and 100 reminders fall due."""
    import datetime

    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from pipeline.events import deal_changes_pending
    from pipeline.models import Deal
    from reminders.models import Reminder, ReminderKind

    _purge()
    # Beat runs, the worker does not: the scans pile up as they would.
    beat = _start("beat")
    started = time.monotonic()
    due_at = timezone.now() + datetime.timedelta(seconds=min(30, seconds // 2))
    deals = list(Deal.objects.open().order_by("id").values_list("id", "rep_id")[:100])
    Reminder.objects.bulk_create(
        [
            Reminder(deal_id=deal_id, kind=ReminderKind.STALE_DEAL, occurrence="bench-outage",
                     owner_id=rep_id, why="Benchmark: falls due during the outage", due_at=due_at)
            for deal_id, rep_id in deals
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    _import(600, "o")
    deepest = _queued()
    while time.monotonic() - started < seconds:
        deepest = max(deepest, _queued())
        time.sleep(2)
    connection.close()
    restarted = time.monotonic()
    worker = _start("worker")
    falling = Reminder.objects.filter(occurrence="bench-outage")
    try:
        while time.monotonic() - restarted < 300:
            deepest = max(deepest, _queued())
            if (
                _check_ins("o") == 600
                and falling.filter(state="due").count() == len(deals)
                and deal_changes_pending() == 0
            ):
                break
            time.sleep(0.5)
        caught_up = time.monotonic() - restarted
    finally:
        _stop(worker)
        _stop(beat)
    duplicated = (
        Reminder.objects.values("deal", "kind", "occurrence")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    ).count()
    figures = {
        "outage_s": seconds,
        "outage_deepest_queue": deepest,
        "outage_caught_up_s": round(caught_up, 1),
        "outage_check_ins": _check_ins("o"),
        "outage_due": falling.filter(state="due").count(),
        "outage_duplicates": duplicated,
    }
    falling.delete()
    _forget("o")
    log(
        f"outage of {seconds} s (600 imported, {len(deals)} falling due): the queue held at most "
        f"{deepest} messages; everything existed and was due {figures['outage_caught_up_s']} s "
        f"after the restart; {duplicated} duplicates "
        "(target: a few dozen messages, <= 90 s, 0; before: 7,008 messages, 0 of 200 due "
        "3 min after the restart)"
    )
    return figures


def configure(deals: int, db_name: str) -> None:
    global DEALS, REMINDERS, DB_NAME, DB_URL
    DEALS, REMINDERS = deals, deals * 10
    DB_NAME, DB_URL = db_name, f"{PG}/{db_name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the data set")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--deals", type=int, default=DEALS, help="how many deals (seed_scale)")
    parser.add_argument("--db", default=DB_NAME, help="the database's name on BENCH_PG")
    parser.add_argument(
        "--only", choices=["issue23"], help="only issue 23's figures, on the data as it is"
    )
    parser.add_argument(
        "--outage-seconds", type=int, default=240, help="how long worker and beat are stopped"
    )
    args = parser.parse_args()
    configure(args.deals, args.db)
    ensure_database(args.rebuild)
    setup_django()
    if args.only != "issue23":
        build_data()
    figures = {
        **moments.measure_backfill(),
        **moments.measure_minute_scan(),
        **moments.measure_hour_of_scans(),
        **measure_import(),
    }
    if args.only != "issue23":
        figures |= {
            **measure_engine(),
            **measure_panel(),
            **measure_falling_due(),
            **measure_outage(args.outage_seconds),
        }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    log(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
