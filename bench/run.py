"""Cleared's benchmark: the Not paid yet board, the rep's home and the CSV export at scale.

    python bench/run.py            # 10,000 and 100,000 deals on PostgreSQL, page by page
    python bench/run.py --deals 20000 --small 5000 --reuse
    (`make bench` is bench/table.py: issue 23's table; it calls bench_size here)

It builds two PostgreSQL databases with ``seed_scale`` (reused with --reuse when
they already hold the data), starts gunicorn on loopback (2 workers) against
each, and prints for every page the median and p95 round-trip time on
loopback, and the SQL query count (measured in-process with Django's test
client on the same database). Each page is compared with its own SQL run
alone, the floor no code can go under: the queries the page ran, captured and
replayed directly over a database connection (same session settings), timed
the same way ("board page / its own SQL = 1.9×"). It also times the Django
admin's change list of deals on the same data ("board / admin = 1.84×": the
board's median over the admin's, so above 1 the board is the slower), the CSV
export with the server's memory, and the rep's home under load (wrk when it is
installed, else a threaded Python client).
Then a realistic day on the large database (``bench/day.py``): many people
signed in at once, polling, reading and writing. Targets are printed beside
the figures; nothing here is asserted in the tests.
"""

import argparse
import inspect
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# The cache production uses (docker-compose): Redis, here a database of its own.
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/9")
# The same key for the sessions made here and the server that reads them.
SECRET = "bench-only-secret-key-" + "x" * 40


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (e.g. to the login page) is a failure, not a page


OPENER = urllib.request.build_opener(_NoRedirect)


def log(message: str) -> None:
    print(message, flush=True)


def manage(db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CLEARED_VAR_DIR": str(ROOT / "var" / "bench"),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECRET_KEY": SECRET,
    }
    result = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        sys.exit(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
    return result


def psql(sql: str) -> None:
    subprocess.run(  # noqa: S603
        ["psql", f"{PG}/postgres", "-qc", sql],
        check=True,
        capture_output=True,  # noqa: S607
    )


# Run in order after `migrate` (on --reuse and after a seed): backfills of what newer
# migrations add to old data, e.g. ["reminders_backfill_next_moment"]; idempotent.
BACKFILLS: list[list[str]] = [
    # The Not paid yet summary as beat's hourly fold keeps it: a bulk-loaded
    # database never ran beat, and its unfolded days are 3.5× the board's rows.
    ["fold_board_totals"],
]


def migrate_and_backfill(url: str) -> None:
    manage(url, "migrate", "--noinput")
    for command in BACKFILLS:
        started = time.monotonic()
        manage(url, *command)
        log(f"  backfill {' '.join(command)}: {time.monotonic() - started:.1f} s")


def prepare_database(name: str, deals: int, reuse: bool, report: list | None = None) -> str:
    """``name`` with ``deals`` seeded (or kept with ``reuse``); ``report`` gets seed_scale's line."""
    url = f"{PG}/{name}"
    if reuse:
        probe = manage(
            url,
            "shell",
            "-c",
            "from pipeline.models import Deal; print(Deal.objects.count())",
            check=False,
        )
        lines = probe.stdout.strip().splitlines()
        if probe.returncode == 0 and lines and lines[-1].isdigit() and int(lines[-1]) >= deals:
            log(f"  {name}: reusing {int(lines[-1]):,} deals")
            migrate_and_backfill(url)  # data seeded by an older checkout
            return url
    psql(f'DROP DATABASE IF EXISTS "{name}"')
    psql(f'CREATE DATABASE "{name}"')
    manage(url, "migrate", "--noinput")
    started = time.monotonic()
    # One team of 50 reps: the manager's board holds every deal (the worst
    # case), and each rep has a realistic book of deals.
    out = manage(
        url, "seed_scale", "--deals", str(deals), "--teams", "1", "--reps-per-team", "50"
    ).stdout.strip()
    log(f"  {name}: {out.splitlines()[-1]} (wall {time.monotonic() - started:.1f} s)")
    if report is not None:
        report.append(out.splitlines()[-1])
    migrate_and_backfill(url)
    manage(
        url,
        "shell",
        "-c",
        "from django.db import connection; connection.cursor().execute('VACUUM ANALYZE')",
    )
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flush_cache() -> None:
    """An empty cache for each server, so every size starts cold."""
    subprocess.run(["redis-cli", "-u", CACHE_URL, "flushdb"], capture_output=True, check=True)


@contextmanager
def gunicorn(db_url: str, workers: int = 2):
    port = free_port()
    flush_cache()
    env = {
        **os.environ,
        "CACHE_URL": CACHE_URL,
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "CLEARED_VAR_DIR": str(ROOT / "var" / "bench"),
        "LOG_LEVEL": "WARNING",
        # Production settings ask for the processor's keys; nothing here pays online.
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
    }
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    process = subprocess.Popen(  # noqa: S603
        [
            PYTHON,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn.conf.py",  # production's settings (threads, masked logs)
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--access-logfile",
            "/dev/null",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)  # noqa: S310
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # Still answering requests queued by a load that outran it (a figure
            # already recorded as such): stop it rather than lose the run's results.
            log("  gunicorn still busy 20 s after SIGTERM: killed")
            process.kill()
            process.wait()


# Signs a user in as the login page would, two-factor included: a manager's or a
# superuser's session is marked verified with a device made for the benchmark.
SIGN_IN = (
    "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
    "from django_otp import DEVICE_ID_SESSION_KEY\n"
    "from django_otp.plugins.otp_totp.models import TOTPDevice\n"
    "from pipeline.accounts import SESSION_HAS_DEVICE, two_factor_required\n"
    "def sign_in(u, s):\n"
    "    s[SESSION_KEY] = str(u.pk)\n"
    "    s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
    "    s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
    "    s[SESSION_HAS_DEVICE] = two_factor_required(u)\n"
    "    if two_factor_required(u):\n"
    "        d, _ = TOTPDevice.objects.get_or_create(user=u, name='bench', defaults={'confirmed': True})\n"
    "        s[DEVICE_ID_SESSION_KEY] = d.persistent_id\n"
)


def sessions_for(db_url: str, usernames: list[str]) -> list[str]:
    """One signed-in session per entry (a user may have several: phone and laptop)."""
    code = SIGN_IN + (
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "U = get_user_model()\n"
        f"for name in {usernames!r}:\n"
        "    s = SessionStore(); sign_in(U.objects.get(username=name), s); s.create()\n"
        "    print(s.session_key)\n"
    )
    return manage(db_url, "shell", "-c", code).stdout.split()[-len(usernames) :]


def session_for(db_url: str, username: str) -> str:
    return sessions_for(db_url, [username])[0]


def browser_cookies(base: str, session_key: str) -> str:
    """The cookies a signed-in browser sends: its session and the CSRF cookie
    the first page gave it (the cached homes vary with the CSRF secret)."""
    request = urllib.request.Request(base + "/", headers={"Cookie": f"sessionid={session_key}"})
    with OPENER.open(request, timeout=120) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            if header.startswith("csrftoken="):
                return f"sessionid={session_key}; {header.split(';')[0]}"
    raise RuntimeError("the home page set no CSRF cookie")


def fetch(url: str, cookie: str) -> tuple[float, int, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310
    started = time.perf_counter()
    with OPENER.open(request, timeout=120) as response:
        body = response.read()
        status = response.status
    return (time.perf_counter() - started) * 1000, status, body


def timings(url: str, cookie: str, runs: int, before_each=None) -> dict:
    """Median and p95 of ``runs`` requests, after a warm-up; ``before_each()`` runs
    ahead of each timed request, untimed."""
    fetch(url, cookie)  # warm up connection pools and caches
    samples = []
    for _ in range(runs):
        if before_each is not None:
            before_each()
        elapsed, status, _ = fetch(url, cookie)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}")
        samples.append(elapsed)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
    }


def board_after_writes(base: str, db_url: str, cookie: str, manager: str, runs: int) -> dict:
    """The board right after a write by one rep of the team, each time another rep.

    The write is made directly (one of the rep's deals touched), so what is
    timed is only the board's read after it: the table and the totals (kept
    exact by the database) both show it.
    """
    import random

    import psycopg

    with psycopg.connect(db_url, autocommit=True) as connection:
        reps = [
            row[0]
            for row in connection.execute(
                "SELECT id FROM pipeline_user WHERE manager_id = "
                "(SELECT id FROM pipeline_user WHERE username = %s)",
                [manager],
            )
        ]

        def a_rep_writes() -> None:
            connection.execute(
                "UPDATE pipeline_deal SET updated_at = now() WHERE id = "
                "(SELECT id FROM pipeline_deal WHERE rep_id = %s LIMIT 1)",
                [random.choice(reps)],
            )

        return timings(base + "/board/", cookie, runs, before_each=a_rep_writes)


def page_sql(db_url: str, paths: dict[str, tuple[str, str]], runs: int) -> dict[str, dict]:
    """Per page: SQL queries on a cache miss and a hit, and its SQL run alone.

    Counted in-process with the test client on the same data (after one
    warm-up request). The hit's queries (the state the timed requests are in:
    the board's totals kept) are then replayed on a connection of their own,
    opened with Django's connection parameters (so the same work_mem and
    parallel-worker settings), each run in a transaction rolled back (a
    session write is undone), every row fetched: ``sql_ms`` is the median of
    ``runs`` replays, the page's floor.

    Each statement is replayed as the page runs it: the ORM's as the text it
    sent (planned at each run, as the page's are), the compiled ones
    (``pipeline.compiled``, prepared on the page's connection) as prepared
    statements with their values (``{"prepared": sql, "params": [...]}``,
    ``replay_statement``): replaying those as text would plan what the page
    does not plan, and flatter the page's share.
    """
    code = (
        SIGN_IN
        + (
            "import json, statistics, time, psycopg\n"
            "from django.test import Client\n"
            "from django.core.cache import cache\n"
            "from django.test.utils import CaptureQueriesContext\n"
            "from django.db import connection\n"
            "from django.contrib.auth import get_user_model\n"
            "U = get_user_model(); out = {}; clients = {}\n"
            "from django.db.backends.postgresql.base import ServerBindingCursor\n"
            "def mark(prepared):\n"
            "    def wrapper(execute, sql, params, many, context):\n"
            "        server = isinstance(context['cursor'].cursor, ServerBindingCursor)\n"
            "        prepared.append({'prepared': sql, 'params': [tagged(p) for p in params]} if server else None)\n"
            "        return execute(sql, params, many, context)\n"
            "    return wrapper\n"
            "import datetime, decimal\n"
            "def tagged(value):\n"
            "    if isinstance(value, datetime.datetime): return {'dt': value.isoformat()}\n"
            "    if isinstance(value, datetime.date): return {'d': value.isoformat()}\n"
            "    if isinstance(value, decimal.Decimal): return {'dec': str(value)}\n"
            "    assert value is None or isinstance(value, (str, int, bool)), type(value)\n"
            "    return value\n"
            f"paths = {json.dumps(paths)}; runs = {runs}\n"
            "for name, (user, path) in paths.items():\n"
            "    c = clients.get(user) or Client(); clients[user] = c\n"
            "    c.force_login(U.objects.get(username=user))\n"
            "    s = c.session; sign_in(U.objects.get(username=user), s); s.save()\n"
            "    c.get(path)\n"
            "    cache.clear()\n"
            "    counts, captured = [], []\n"
            "    for _ in range(2):\n"
            "        prepared = []\n"
            "        with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(mark(prepared)):\n"
            "            r = c.get(path)\n"
            "        assert r.status_code == 200, (path, r.status_code)\n"
            "        assert len(prepared) == len(ctx.captured_queries)\n"
            "        counts.append(len(ctx.captured_queries))\n"
            "        captured = [p or q['sql'] for p, q in zip(prepared, ctx.captured_queries)]\n"
            "    out[name] = {'queries': counts[0], 'queries_cached': counts[1], 'sql': captured}\n"
            + inspect.getsource(replay_statement)
            + inspect.getsource(_untagged)
            + "params = connection.get_connection_params()\n"
            "with psycopg.connect(**params) as raw:\n"
            "    for name, page in out.items():\n"
            "        samples = []\n"
            "        for attempt in range(runs + 1):\n"
            "            started = time.perf_counter()\n"
            "            with raw.cursor() as cur:\n"
            "                for statement in page['sql']:\n"
            "                    replay_statement(cur, statement)\n"
            "            elapsed = (time.perf_counter() - started) * 1000\n"
            "            raw.rollback()\n"
            "            if attempt:\n"
            "                samples.append(elapsed)\n"  # the first replay warms the caches
            "        page['sql_ms'] = round(statistics.median(samples), 1)\n"
            "out['_connection'] = {k: v for k, v in params.items() if isinstance(v, (str, int))}\n"
            "print(json.dumps(out))"
        )
    )
    result = manage(db_url, "shell", "-c", code)
    return json.loads(result.stdout.strip().splitlines()[-1])


def replay_statement(cur, statement) -> None:
    """Run one of a page's statements (``page_sql``) on a psycopg cursor as the page
    ran it, every row fetched: a text planned each time, a compiled one prepared."""
    import datetime
    import decimal

    if isinstance(statement, str):
        # Never prepared, as the ORM's client-side binding cursors never are
        # (psycopg prepares a text it has run prepare_threshold times).
        cur.execute(statement, prepare=False)
    else:
        params = [_untagged(value, datetime, decimal) for value in statement["params"]]
        cur.execute(statement["prepared"], params, prepare=True)
    if cur.description is not None:
        cur.fetchall()


def _untagged(value, datetime, decimal):
    """A value of a compiled statement as ``page_sql`` wrote it in JSON."""
    if isinstance(value, dict):
        if "dt" in value:
            return datetime.datetime.fromisoformat(value["dt"])
        if "d" in value:
            return datetime.date.fromisoformat(value["d"])
        return decimal.Decimal(value["dec"])
    return value


def page_and_sql_paired(url: str, cookie: str, sql: list[str], connection: dict, runs: int):
    """The page and its own SQL timed in turns, ``runs`` pairs: one request, then one
    replay of the queries it ran (``page_sql``'s capture, on a connection with
    Django's parameters, rolled back). Both halves of "page ÷ its own SQL" are then
    measured in the same seconds: a moment the database is busier (autovacuum
    after the reminders' import, a checkpoint) slows both, not only one of them."""
    import psycopg

    def replay(raw) -> float:
        started = time.perf_counter()
        with raw.cursor() as cur:
            for statement in sql:
                replay_statement(cur, statement)
        elapsed = (time.perf_counter() - started) * 1000
        raw.rollback()
        return elapsed

    pages, replays = [], []
    with psycopg.connect(**connection) as raw:
        replay(raw), fetch(url, cookie)  # warm: caches, the server's connection
        for _ in range(runs):
            elapsed, status, _ = fetch(url, cookie)
            if status != 200:
                raise RuntimeError(f"{url} answered {status}")
            pages.append(elapsed)
            replays.append(replay(raw))
    return {
        "median_ms": round(statistics.median(pages), 1),
        "sql_ms": round(statistics.median(replays), 1),
        "pairs": runs,
    }


def ratio(numerator: float, denominator: float) -> str:
    """``numerator / denominator`` as "1.84×"."""
    return f"{numerator / denominator:.2f}×" if denominator else "n/a"


def deep_cursor(db_url: str, username: str) -> str:
    """A cursor to the middle of the manager's board, in its default order."""
    code = (
        "from dashboards.board import BoardFilters, board_deals, encode_cursor; "
        "from django.contrib.auth import get_user_model; "
        f"u = get_user_model().objects.get(username='{username}'); "
        "q = board_deals(u, BoardFilters()); "
        "d = q.values_list('promised_at', 'pk')[q.count() // 2]; "
        "print(encode_cursor(d[0], d[1]))"
    )
    return manage(db_url, "shell", "-c", code).stdout.strip().splitlines()[-1]


def rss_kb(pid: int) -> int:
    total = 0
    for child in [pid, *children_of(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return total


def children_of(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)  # noqa: S603, S607
    except FileNotFoundError:
        return []
    return [int(p) for p in out.stdout.split()]


def load(url: str, cookie: str, seconds: int) -> dict:
    """Requests per second on the rep's home: wrk if available, else Python threads."""
    wrk = shutil.which("wrk")
    if wrk is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True)  # noqa: S603, S607
        wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run(  # noqa: S603
            [wrk, "-t2", "-c8", f"-d{seconds}s", "-H", f"Cookie: {cookie}", url],
            capture_output=True,
            text=True,
        ).stdout
        rate = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
        errors = [line.strip() for line in out.splitlines() if "Non-2xx" in line]
        return {"tool": "wrk -t2 -c8", "requests_per_s": float(rate.split()[1]), "errors": errors}
    done, stop = [0], time.monotonic() + seconds

    def worker():
        while time.monotonic() < stop:
            fetch(url, cookie)
            done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"tool": "python, 8 threads", "requests_per_s": round(done[0] / seconds, 1)}


def bench_size(label: str, db_url: str, runs: int) -> dict:
    manager = "scale_manager_1"
    rep = "scale_rep_1_1"
    cursor = deep_cursor(db_url, manager)
    pages = {
        "board, first page": (manager, "/board/"),
        "board, filtered": (manager, "/board/?stage=delivered&bucket=31-60&sort=-outstanding"),
        "board, deep page (middle)": (manager, f"/board/?after={cursor}"),
        "rep home": (rep, "/"),
        "admin deal change list": ("scale_admin", "/admin/pipeline/deal/"),
    }
    manage(
        db_url,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        "U.objects.filter(username='scale_admin').exists() or "
        "U.objects.create_superuser('scale_admin', 'a@example.com', 'x')",
    )
    measured = page_sql(db_url, pages, runs)
    connection = measured.pop("_connection")
    board_sql = measured["board, first page"]["sql"]
    for page in measured.values():
        del page["sql"]
    sessions = {user: session_for(db_url, user) for user in {u for u, _ in pages.values()}}
    results = {}
    with gunicorn(db_url) as (base, process):
        cookies = {user: browser_cookies(base, key) for user, key in sessions.items()}
        for name, (user, path) in pages.items():
            results[name] = {**timings(base + path, cookies[user], runs), **measured[name]}
            page, sql = results[name]["median_ms"], results[name]["sql_ms"]
            log(
                f"  [{label}] {name:32} median {page:7.1f} ms   "
                f"p95 {results[name]['p95_ms']:7.1f} ms   "
                f"{results[name]['queries']:3d} queries ({results[name]['queries_cached']} "
                f"from cache); its SQL alone {sql:.1f} ms: page / its own SQL = {ratio(page, sql)}"
            )
        results["board, first page, paired"] = page_and_sql_paired(
            base + pages["board, first page"][1], cookies[manager], board_sql, connection, runs
        )
        paired = results["board, first page, paired"]
        log(
            f"  [{label}] {'board, first page, paired':32} median "
            f"{paired['median_ms']:7.1f} ms, its SQL in the same turns {paired['sql_ms']:.1f} ms: "
            f"page / its own SQL = {ratio(paired['median_ms'], paired['sql_ms'])}"
        )
        results["board after a write"] = board_after_writes(
            base, db_url, cookies[manager], manager, runs
        )
        log(
            f"  [{label}] {'board, after one rep writes':32} median "
            f"{results['board after a write']['median_ms']:7.1f} ms   "
            f"p95 {results['board after a write']['p95_ms']:7.1f} ms"
        )
        before = rss_kb(process.pid)
        started = time.perf_counter()
        elapsed, status, body = fetch(base + "/board/export.csv", cookies[manager])
        rows = body.count(b"\n") - 1
        after = rss_kb(process.pid)
        results["csv export"] = {
            "rows": rows,
            "seconds": round((time.perf_counter() - started), 2),
            "worker_peak_rss_mb_before": round(before / 1024, 1),
            "worker_peak_rss_mb_after": round(after / 1024, 1),
        }
        log(
            f"  [{label}] csv export: {rows:,} rows in {results['csv export']['seconds']} s, "
            f"worker peak RSS {before / 1024:.0f} MB → {after / 1024:.0f} MB"
        )
        results["rep home load"] = load(base + "/", cookies[rep], seconds=10)
        log(f"  [{label}] rep home under load: {results['rep home load']}")
        # What every open home does every few seconds: poll an unchanged panel.
        _, _, panel = fetch(base + "/reminders/panel/", cookies[rep])
        poll = (
            base + re.search(rb'hx-get="(/reminders/panel/\?v=[0-9a-f]+)"', panel).group(1).decode()
        )
        results["panel poll load"] = load(poll, cookies[rep], seconds=5)
        log(f"  [{label}] unchanged panel polls under load: {results['panel poll load']}")
    # The same pages on a second, fresh server (the figures the table reads as
    # "uncached": since issue 23 no page keeps anything in a cache).
    with gunicorn(db_url) as (base, process):
        cookies = {user: browser_cookies(base, key) for user, key in sessions.items()}
        for name in ("board, first page", "rep home"):
            user, path = pages[name]
            results[f"{name}, uncached"] = timings(base + path, cookies[user], runs)
            log(
                f"  [{label}] {name + ', uncached':32} median "
                f"{results[f'{name}, uncached']['median_ms']:7.1f} ms   "
                f"p95 {results[f'{name}, uncached']['p95_ms']:7.1f} ms"
            )
        results["rep home load, uncached"] = load(base + "/", cookies[rep], seconds=10)
        log(f"  [{label}] rep home under load, uncached: {results['rep home load, uncached']}")
    return results


def _size(deals: int) -> str:
    return f"{deals // 1000}k" if deals >= 1000 and deals % 1000 == 0 else f"{deals:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep databases already seeded")
    parser.add_argument("--users", type=int, default=300, help="people signed in for a day")
    parser.add_argument("--day-seconds", type=float, default=60, help="how long the day lasts")
    parser.add_argument(
        "--db-prefix", default="cleared_bench", help="the two databases' names start with this"
    )
    args = parser.parse_args()
    log(f"Cleared benchmark on PostgreSQL: {args.small:,} and {args.deals:,} deals")
    small = prepare_database(f"{args.db_prefix}_small", args.small, args.reuse)
    large = prepare_database(f"{args.db_prefix}_large", args.deals, args.reuse)
    figures = {
        "small": bench_size(_size(args.small), small, args.runs),
        "large": bench_size(_size(args.deals), large, args.runs),
    }
    # A realistic day (bench/day.py) on the large database: it imports this module.
    from day import bench_day

    figures["day"] = bench_day(large, args.users, args.day_seconds)
    big, little = figures["large"], figures["small"]
    first = big["board, first page"]["median_ms"]
    admin = big["admin deal change list"]["median_ms"]
    log("")
    log("Targets (at the large size):")
    checks = [
        ("board first page median < 150 ms", f"{first} ms", first < 150),
        (
            "deep page no slower than first page (±20%)",
            f"{big['board, deep page (middle)']['median_ms']} ms",
            big["board, deep page (middle)"]["median_ms"] <= first * 1.2,
        ),
        (
            "≤ 12 queries per board page",
            str(
                max(
                    v["queries"] for k, v in big.items() if k.startswith("board") and "queries" in v
                )
            ),
            max(v["queries"] for k, v in big.items() if k.startswith("board") and "queries" in v)
            <= 12,
        ),
        (
            "board large ≤ 2 × board small",
            f"{first} vs {little['board, first page']['median_ms']} ms",
            first <= 2 * little["board, first page"]["median_ms"],
        ),
        (
            "CSV export < 10 s",
            f"{big['csv export']['rows']:,} rows in {big['csv export']['seconds']} s",
            big["csv export"]["seconds"] < 10,
        ),
        (
            f"a day of {args.users} people: p95 < 300 ms, no errors",
            f"p95 {figures['day']['all']['p95_ms']} ms, {figures['day']['error_count']} errors",
            figures["day"]["all"]["p95_ms"] < 300 and figures["day"]["error_count"] == 0,
        ),
    ]
    for name, value, ok in checks:
        log(f"  {'PASS' if ok else 'MISS'}  {name:45} {value}")
    cold, cold_small = big["board, first page, uncached"], little["board, first page, uncached"]
    log(
        f"  With the board's totals never kept: board first page {cold['median_ms']} ms "
        f"(large / small = {ratio(cold['median_ms'], cold_small['median_ms'])}, "
        f"{cold_small['median_ms']} ms at the small size), rep home "
        f"{big['rep home load, uncached']['requests_per_s']} requests/s"
    )
    log(
        f"  board / admin = {ratio(first, admin)} (board first page median {first} ms, "
        f"admin deal change list {admin} ms; above 1× the board is the slower)"
    )
    for name in ("board, first page", "board, deep page (middle)", "admin deal change list"):
        page, sql = big[name]["median_ms"], big[name]["sql_ms"]
        log(
            f"  {name} / its own SQL = {ratio(page, sql)} "
            f"({page} ms over HTTP, {sql} ms of its {big[name]['queries_cached']} queries alone)"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(figures, indent=2))
    log(f"Figures written to {out / 'latest.json'}")


if __name__ == "__main__":
    main()
