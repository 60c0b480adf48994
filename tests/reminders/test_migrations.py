"""Reminders moved from the pipeline app to their own without touching the data.

The move is in migration state only (reminders.0001_initial, pipeline.0018): a
database migrated from the schema before it keeps every reminder row, and the
tables keep their names, constraints and indexes.
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from reminders.models import Reminder, ReminderDigest, ReminderKind
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("pipeline", "0017_mask_invoicing_exception_copy"), ("reminders", None)]
TABLES = ("pipeline_reminder", "pipeline_reminderdigest")
DDL = ("CREATE", "ALTER", "DROP", "TRUNCATE")
INDEXES_CHANGED = ("reminders", "0014_reminder_open_next_by_deal")


def _schema() -> dict[str, dict]:
    with connection.cursor() as cursor:
        return {
            table: {
                name: (tuple(c["columns"]), c["unique"], c["index"], c["check"])
                for name, c in connection.introspection.get_constraints(cursor, table).items()
            }
            for table in TABLES
        }


def _rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, deal_id, kind, occurrence, owner_id, why FROM pipeline_reminder")
        return sorted(cursor.fetchall())


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_a_database_from_before_the_move_keeps_every_reminder_row_and_its_schema(
    make_reminder, deal, other_rep
):
    make_reminder(deal)
    make_reminder(deal, kind=ReminderKind.STALE_DEAL, state="done")
    make_reminder(DealFactory(rep=other_rep), owner=other_rep)
    ReminderDigest.objects.create(recipient=f"user:{deal.rep_id}")
    rows, schema = _rows(), _schema()
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _migrate(BEFORE)
        old = MigrationExecutor(connection).loader.project_state(BEFORE[:1]).apps
        assert old.get_model("pipeline", "Reminder").objects.count() == 3
        assert ContentType.objects.filter(app_label="pipeline", model="reminder").exists()
        with CaptureQueriesContext(connection) as moved:
            _migrate(latest)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    # Other migrations on the way may change other tables (the page cache's
    # stamps are dropped): none touches a reminder table, but for what later
    # migrations add on purpose (the digest's lease, reminders.0003; each deal's
    # next moment, reminders.0012; the open reminders' covering indexes, reminders.0013;
    # the board's next reminder of a deal, reminders.0014).
    later = (
        '"claimed_until"',
        '"reminders_job"',
        '"reminders_dealschedule"',
        '"reminder_open_by_owner"',
        '"reminder_open_by_queue"',
        '"reminder_open_next_by_deal"',
    )
    # Up to reminders.0014: reminders.0015 changes the table's indexes on purpose
    # (and SQLite rebuilds the table for it).
    recorded = [f"'reminders', '{INDEXES_CHANGED[1]}'" in q["sql"] for q in moved]
    ddl = [
        q["sql"]
        for q in moved[: recorded.index(True)]
        if q["sql"].lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))
        and "reminder" in q["sql"]
        and not any(name in q["sql"] for name in later)
    ]
    assert any('INSERT INTO "django_migrations"' in q["sql"] for q in moved)  # it ran
    assert ddl == []
    assert _rows() == rows and _schema() == schema
    assert Reminder.objects.count() == 3 and ReminderDigest.objects.count() == 1
    # Permissions on reminders keep their ids: the content type moved with the models.
    assert ContentType.objects.get_for_model(Reminder).app_label == "reminders"
    assert not ContentType.objects.filter(app_label="pipeline", model="reminder").exists()
