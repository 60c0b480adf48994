"""What a figure spends its time on, for the table's misses (bench/table.py).

Run inside Django, on the benchmark's database, by ``bench/table.py``:

    python bench/explain.py page URL USER PATH     # the page's slowest query, EXPLAIN ANALYZE
    python bench/explain.py scan URL [--sweep]     # a profile of one reminders scan
    python bench/explain.py evaluate URL           # ... of 200 deals' reminders brought up to date

A page's explanation is its queries (count, total SQL time) and the plan of the
slowest one, run again under ``EXPLAIN (ANALYZE, BUFFERS)``; a scan's is the
top of a cProfile (cumulative time, Cleared's own functions and the database
driver) with its queries' count and time.
"""

import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("CLEARED_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _queries_summary(captured: list[dict], wall_s: float) -> str:
    sql_s = sum(float(q["time"]) for q in captured)
    return f"{len(captured)} queries, {sql_s:.2f} s of SQL in {wall_s:.2f} s"


def _plan(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def explain_page(username: str, path: str) -> str:
    """The page's queries as a signed-in user, and the plan of its slowest one."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from pipeline.accounts import SESSION_HAS_DEVICE, two_factor_required

    user = get_user_model().objects.get(username=username)
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_HAS_DEVICE] = two_factor_required(user)
    if two_factor_required(user):
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="bench", defaults={"confirmed": True}
        )
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    client.get(path)  # warm
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(path)
        if getattr(response, "streaming", False):
            for _ in response.streaming_content:
                pass
        wall = time.perf_counter() - started
    queries = captured.captured_queries
    slowest = max(queries, key=lambda q: float(q["time"]))
    return (
        f"{path}: {_queries_summary(queries, wall)}; slowest {float(slowest['time']) * 1000:.0f} ms:\n"
        f"{slowest['sql'][:600]}\n{_plan(slowest['sql'])}"
    )


def explain_scan(sweep: bool, deals: int = 0) -> str:
    """One reminders scan (the minute's, or the hourly sweep) under cProfile; with
    ``deals``, the reminders of the newest ``deals`` open deals brought up to date
    (what the worker does for an import of that many)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pipeline.models import Deal
    from reminders.services import reminders_scan

    kwargs = {"sweep": sweep}
    if deals:
        newest = Deal.objects.open().order_by("-id").values_list("id", flat=True)[:deals]
        kwargs = {"deal_ids": list(newest)}
    profiler = cProfile.Profile()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        profiler.runcall(reminders_scan, **kwargs)
        wall = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(r"(/reminders/|/pipeline/|/billing/|psycopg.*execute)", 14)
    lines = [line for line in out.getvalue().splitlines() if line.strip()][-16:]
    queries = captured.captured_queries
    slowest = max(queries, key=lambda q: float(q["time"])) if queries else None
    call = f"deal_ids=<{deals} newest open deals>" if deals else f"sweep={sweep}"
    head = f"reminders_scan({call}): {_queries_summary(queries, wall)}"
    if slowest is not None:
        head += f"; slowest query {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:300]}"
    return head + "\n" + "\n".join(lines)


def main() -> None:
    kind, db_url, *rest = sys.argv[1:]
    setup(db_url)
    if kind == "page":
        print(explain_page(*rest))
    elif kind == "scan":
        print(explain_scan(sweep="--sweep" in rest))
    elif kind == "evaluate":
        print(explain_scan(sweep=False, deals=200))
    else:
        sys.exit(f"unknown explanation {kind!r}")


if __name__ == "__main__":
    main()
