"""Tests that need a service the embedded default does not run.

``make test`` with nothing set runs on SQLite (in memory) and a filesystem
broker. A test that needs more says so with a marker and its reason:

    @pytest.mark.needs_postgres("SQLite has no row locks")
    @pytest.mark.needs_redis("the broker is stopped and started again")

and, when the service is missing, it is skipped with a reason that names the
service ("needs PostgreSQL: SQLite has no row locks (set DATABASE_URL)").
PostgreSQL is there when the test database is PostgreSQL (DATABASE_URL);
Redis when a ``redis-server`` can be started (the tests start their own).

In CI (``CI`` set) nothing else may skip: a skip whose reason is not one of
these fails the run, and on PostgreSQL no test may skip at all
(tests/conftest.py, ``pytest_sessionfinish``).
"""

import os
import shutil

import pytest
from django.db import connection

POSTGRES_HINT = "set DATABASE_URL=postgres://…"
REDIS_HINT = "apt-get install redis-server"
# marker name -> (service as the reason names it, is it missing?, how to get it)
NEEDS = {
    "needs_postgres": ("PostgreSQL", lambda: connection.vendor != "postgresql", POSTGRES_HINT),
    "needs_redis": ("Redis", lambda: shutil.which("redis-server") is None, REDIS_HINT),
}
PREFIXES = tuple(f"needs {service}: " for service, _, _ in NEEDS.values())


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def skip_reason(item) -> str | None:
    """Why ``item`` cannot run here, naming the first missing service; None if it can.

    In CI a missing Redis is not a reason: the test runs and fails, since CI
    installs redis-server. A missing PostgreSQL is, in CI too: the bare run
    (nothing set) skips those tests and the run on PostgreSQL runs them.
    """
    for name, (service, missing, hint) in NEEDS.items():
        marker = item.get_closest_marker(name)
        if marker is None or not missing():
            continue
        if service == "Redis" and in_ci():
            continue
        why = marker.args[0] if marker.args else "this test"
        return f"needs {service}: {why} ({hint})"
    return None


def redis_server() -> str:
    """The path of ``redis-server``: a skip naming Redis without it, a failure in CI."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = f"needs Redis: redis-server is not installed ({REDIS_HINT})"
        if in_ci():
            pytest.fail(f"{message}; CI runs every test.")
        pytest.skip(message)
    return binary
