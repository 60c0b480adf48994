"""The database settings (``config.settings``' ``DATABASES``), by subject apart."""

from pathlib import Path

import dj_database_url

from config.env import env_bool, env_int, env_str

# Off: under a day of 100 and 300 people (bench/day.py) the pool was not faster
# than persistent per-thread connections (README, "Scaling out and connections").
DATABASE_POOL_DEFAULT = False


def databases(base_dir: Path) -> dict:
    """``DATABASES`` from ``DATABASE_URL`` (SQLite in ``base_dir`` without one), tuned
    for the database it names."""
    found = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{base_dir / 'db.sqlite3'}"),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
    if found["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The board's totals group tens of thousands of open deals; PostgreSQL's
        # default 4MB of sort memory makes that spill to disk. Parallel workers
        # are off by default: on a small machine under many short requests, the
        # planner's parallel plans lose (the reminders panel: a parallel scan of
        # every reminder, 20 ms, instead of its owner index, 2 ms at 100,000 deals).
        found["default"].setdefault("OPTIONS", {})["options"] = (
            f"-c work_mem={env_str('DATABASE_WORK_MEM', '16MB')} "
            f"-c max_parallel_workers_per_gather={env_int('DATABASE_PARALLEL_WORKERS', 0)}"
        )
        # The ORM binds its values in the client and never prepares a statement;
        # pipeline.compiled's queries (the reminders engine, the board's totals, the
        # badge) run on server-side binding and are prepared at their first use on
        # each connection: parsed and planned once, not at every batch or page.
        # DATABASE_PREPARED_STATEMENTS=false behind a pooler that cannot keep them
        # (PgBouncer in transaction mode).
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            found["default"]["OPTIONS"]["prepare_threshold"] = 0
        # Django's built-in psycopg pool (README: "Scaling out and connections"):
        # each process keeps its own (gunicorn forks its workers before any
        # connection is made; Celery's processes do not pool, config/celery.py).
        # A pool replaces the persistent per-thread connection (CONN_MAX_AGE 0).
        if env_bool("DATABASE_POOL", DATABASE_POOL_DEFAULT):
            import psycopg_pool

            found["default"]["OPTIONS"]["pool"] = {
                "min_size": env_int("DATABASE_POOL_MIN", 2),
                "max_size": env_int("DATABASE_POOL_MAX", 8),
                "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
                # A connection is checked as it is handed out: one PostgreSQL
                # restart costs no request an error.
                "check": psycopg_pool.ConnectionPool.check_connection,
            }
            found["default"]["CONN_MAX_AGE"] = 0
            found["default"]["CONN_HEALTH_CHECKS"] = False
    if found["default"]["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web, worker and beat processes read while one writes;
        # IMMEDIATE makes a write transaction take the lock at BEGIN, so two
        # writers queue instead of failing with "database is locked" mid-way.
        found["default"]["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        found["default"]["CONN_MAX_AGE"] = 0
    return found
