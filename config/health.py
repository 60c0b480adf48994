"""What /healthz reports: the database, the broker and the cache, each up or down.

Only the database is vital: with the broker down writes still save (their
follow-up work waits for the next scan) and with the cache down pages are
computed afresh. So the web process is healthy (HTTP 200, ``"status":
"degraded"``) as long as the database answers, and an orchestrator does not
restart web processes that are still serving pages because Redis blinked.
"""

from django.core.cache import cache
from django.db import connection

from config.celery import app as celery_app


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
    return report, serving
