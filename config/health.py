"""What /healthz reports: the database, the broker, the cache and the reminders'
heartbeat (beat's scan), each up or down (or late).

Only the database is vital: with the broker down writes still save (their
follow-up work waits for the next scan) and with the cache down pages are
computed afresh. So the web process is healthy (HTTP 200, ``"status":
"degraded"``) as long as the database answers, and an orchestrator does not
restart web processes that are still serving pages because Redis blinked.
"""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from reminders.services import reminders_last_scan


def _reason(exc: Exception) -> str:
    # The exception's class, not its message: no host names or passwords in a
    # response anyone can fetch.
    return exc.__class__.__name__


def database_state() -> tuple[str, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means down
        return "down", _reason(exc)
    return "ok", ""


def broker_state() -> tuple[str, str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
    except Exception as exc:  # noqa: BLE001
        return "down", _reason(exc)
    return "ok", ""


def cache_state() -> tuple[str, str]:
    ping = getattr(cache, "ping", None)  # config.cache.ForgivingRedisCache; memory needs none
    if ping is None:
        return "ok", "in-process memory"
    try:
        ping()
    except Exception as exc:  # noqa: BLE001
        return "down", _reason(exc)
    return "ok", ""


def heartbeat_state() -> tuple[str, str]:
    """Is beat's reminder scan running? Late after three missed intervals (worker,
    beat or broker down): reminders wait, pages do not."""
    try:
        last = reminders_last_scan()
    except Exception as exc:  # noqa: BLE001
        return "down", _reason(exc)
    if last is None:
        return "late", "no scan has run yet"
    age = (timezone.now() - last).total_seconds()
    if age > 3 * settings.REMINDERS_SCAN_SECONDS:
        return "late", f"the last reminder scan ran {age:.0f} s ago"
    return "ok", ""


def health() -> tuple[dict, bool]:
    """The report, and whether the web process can serve pages (the database is up)."""
    parts = {
        "database": database_state(),
        "broker": broker_state(),
        "cache": cache_state(),
    }
    reasons = {name: reason for name, (state, reason) in parts.items() if state != "ok"}
    serving = parts["database"][0] == "ok"
    status = "ok" if not reasons else "degraded" if serving else "down"
    report: dict = {"status": status, **{name: state for name, (state, _) in parts.items()}}
    if reasons:
        report["reasons"] = reasons
    # The background work, told apart from the web process's own health: a late
    # heartbeat means the worker or beat needs a look, not that pages are down.
    heartbeat, why = heartbeat_state() if serving else ("unknown", "the database is down")
    report["heartbeat"] = heartbeat
    if why:
        report["heartbeat_reason"] = why
    return report, serving
