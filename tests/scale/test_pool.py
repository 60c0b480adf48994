"""DATABASE_POOL: Django's built-in psycopg pool, for the web processes only.

The settings are read afresh from config/settings.py with the environment
given (no database is touched), so these run bare too. With the pool on and
PostgreSQL, each process gets its pool and no persistent connection (Django
refuses both at once); SQLite ignores the switch; Celery's processes drop the
pool (config/celery.py). tests/scale/test_scale_out.py runs a web with the pool
on and one without, side by side under the same work, on PostgreSQL.
"""

import runpy
from pathlib import Path

import psycopg_pool
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.celery import without_pool

SETTINGS = Path(settings.BASE_DIR) / "config" / "settings.py"
POSTGRES = "postgres://cleared@db.example:5432/cleared"


def _databases(monkeypatch, **env: str) -> dict:
    for name in ("DATABASE_POOL", "DATABASE_POOL_MIN", "DATABASE_POOL_MAX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))["DATABASES"]


def test_the_pool_on_postgresql_replaces_the_persistent_connection(monkeypatch):
    database = _databases(
        monkeypatch, DATABASE_URL=POSTGRES, DATABASE_POOL="on", DATABASE_POOL_MAX="6"
    )["default"]
    pool = database["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"]) == (2, 6)
    assert pool["check"] == psycopg_pool.ConnectionPool.check_connection
    assert database["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert "work_mem" in database["OPTIONS"]["options"]  # the session settings stay


def test_the_pool_off_keeps_persistent_connections(monkeypatch):
    database = _databases(monkeypatch, DATABASE_URL=POSTGRES, DATABASE_POOL="off")["default"]
    assert "pool" not in database["OPTIONS"]
    assert database["CONN_MAX_AGE"] == 60


def test_with_nothing_set_the_measured_faster_persistent_connections_stay(monkeypatch):
    # README, "Scaling out and connections": the pool was not faster under a day's load.
    database = _databases(monkeypatch, DATABASE_URL=POSTGRES)["default"]
    assert "pool" not in database["OPTIONS"]
    assert database["CONN_MAX_AGE"] == 60


def test_sqlite_ignores_the_switch(monkeypatch, tmp_path):
    database = _databases(
        monkeypatch, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}", DATABASE_POOL="on"
    )["default"]
    assert "pool" not in database["OPTIONS"]
    assert database["CONN_MAX_AGE"] == 0


def test_a_typo_in_the_switch_stops_the_process(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_POOL"):
        _databases(monkeypatch, DATABASE_URL=POSTGRES, DATABASE_POOL="yes please")


def test_celery_processes_connect_without_the_pool(monkeypatch):
    databases = _databases(monkeypatch, DATABASE_URL=POSTGRES, DATABASE_POOL="on")
    without_pool(databases)
    assert "pool" not in databases["default"]["OPTIONS"]
    assert databases["default"]["CONN_MAX_AGE"] == 0  # one connection per task (the fixup)
