"""/healthz names the part that is down; only a database outage makes it fail (503)."""

import socket

import pytest
from django.db import OperationalError, connection
from django.test import Client

from config import backends
from config.celery import app as celery_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down(monkeypatch):
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout)
    monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery reads it before its own setting
    conf.broker_url = url
    conf.broker_transport_options = backends.redis_broker_transport_options()
    conf.broker_connection_timeout = backends.BROKER_CONNECTION_TIMEOUT
    celery_app._pool = None
    yield
    conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout = saved
    celery_app._pool = None


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {"default": backends.redis_cache(f"redis://127.0.0.1:{_closed_port()}/1")}


@pytest.mark.django_db
def test_healthz_needs_no_login_and_says_each_part_is_ok():
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["database"], body["broker"], body["cache"]) == ("ok", "ok", "ok")
    assert "reasons" not in body


@pytest.mark.django_db
def test_with_the_broker_down_healthz_says_so_and_still_answers_200(broker_down):
    response = Client().get("/healthz")
    assert response.status_code == 200  # pages are still served: do not restart the web process
    body = response.json()
    assert body["status"] == "degraded"
    assert (body["database"], body["broker"], body["cache"]) == ("ok", "down", "ok")
    assert body["reasons"]["broker"] == "OperationalError"


@pytest.mark.django_db
def test_with_the_cache_down_healthz_says_so_and_still_answers_200(cache_down):
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert (body["database"], body["broker"], body["cache"]) == ("ok", "ok", "down")
    assert body["reasons"] == {"cache": "ConnectionError"}


def _database_down(execute, sql, params, many, context):
    raise OperationalError("could not connect to server: Connection refused")


@pytest.mark.django_db
def test_with_the_database_down_healthz_answers_503():
    # Every query fails as it would with the server gone (Django's query hook;
    # SQLite's in-memory test database cannot be taken away).
    with connection.execute_wrapper(_database_down):
        response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"] == "down"
    assert body["reasons"]["database"] == "OperationalError"


@pytest.mark.django_db
def test_healthz_says_whether_the_reminders_heartbeat_runs(settings):
    from datetime import timedelta

    from django.utils import timezone

    from reminders.services import reminders_scan_mark

    before = Client().get("/healthz").json()
    assert (before["status"], before["heartbeat"]) == ("ok", "late")  # pages are fine
    assert before["heartbeat_reason"] == "no scan has run yet"
    reminders_scan_mark(now=timezone.now())
    assert Client().get("/healthz").json()["heartbeat"] == "ok"
    reminders_scan_mark(
        now=timezone.now() - timedelta(seconds=10 * settings.REMINDERS_SCAN_SECONDS)
    )
    late = Client().get("/healthz").json()
    assert late["heartbeat"] == "late"
    assert late["heartbeat_reason"].startswith("the last reminder scan ran ")
