"""Fast bulk loading for ``seed_scale``: COPY, indexes after the load, set-based history.

A million deals come with some ten million rows. What makes that minutes and
not an hour on two cores:

- **COPY** (psycopg's ``cursor.copy``) instead of INSERTs: no per-row statement.
- **Indexes and constraints after the load**: the loaded tables' secondary
  indexes, unique and foreign-key constraints are dropped first (in the load's
  own transaction) and built once at the end, which is far cheaper than
  keeping them up to date row by row (``bulk_indexes_later``).
- **Set-based derived rows**: the change history (django-simple-history's
  tables) and the outbox rows are copies of rows already loaded, written by
  one ``INSERT … SELECT`` each (``history_rows``, ``outbox_rows``).
- **ANALYZE** at the end, so the first query plans know the sizes.

On SQLite (the bare test run) everything falls back to ``bulk_create`` and
the history/outbox steps write the same rows through the ORM's SQL.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.color import no_style
from django.db import connection
from django.db.models import Max

BATCH = 5000


def _ids(model, count: int) -> range:
    """Primary keys for ``count`` new rows, so children can point at them before insert."""
    start = (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
    return range(start, start + count)


def write(model, objs: list) -> list:
    """Insert ``objs`` (their pks set here): PostgreSQL's COPY, else bulk_create.

    A timestamp with ``auto_now`` keeps the value the seed gave it (a deal last
    changed when it last moved, not when the benchmark loaded it); unset, it is now.
    """
    if not objs:
        return objs
    for obj, pk in zip(objs, _ids(model, len(objs)), strict=True):
        obj.pk = pk
    # A generated column (Customer's match keys) is the database's to fill.
    fields = [f for f in model._meta.concrete_fields if not f.generated]
    kept = [f for f in fields if getattr(f, "auto_now", False)]
    if connection.vendor != "postgresql":
        given = {f.attname: [getattr(o, f.attname) for o in objs] for f in kept}
        model.objects.bulk_create(objs, batch_size=BATCH)
        if any(v for values in given.values() for v in values):
            for name, values in given.items():
                for obj, value in zip(objs, values, strict=True):
                    setattr(obj, name, value or getattr(obj, name))
            model.objects.bulk_update(objs, list(given), batch_size=BATCH)
        return objs
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608
            for obj in objs:
                row = []
                for f in fields:
                    # pre_save: auto_now timestamps, and card masking in free text.
                    value = getattr(obj, f.attname) if f in kept else None
                    value = value or f.pre_save(obj, True)
                    row.append(json.dumps(value) if f.attname in json_fields else value)
                copy.write_row(row)
        for sql in connection.ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(sql)
    return objs


def set_column(model, column: str, values: list[tuple[int, object]]) -> None:
    """``UPDATE model SET column = value`` for many (pk, value) pairs at once."""
    if not values:
        return
    if connection.vendor != "postgresql":
        objs = [model(pk=pk, **{column: value}) for pk, value in values]
        model.objects.bulk_update(objs, [column], batch_size=BATCH)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    field = model._meta.get_field(column)
    kind = field.db_type(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE seed_values (id bigint, value {kind}) ON COMMIT DROP")
        with cursor.cursor.copy("COPY seed_values (id, value) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        cursor.execute(
            f"UPDATE {table} t SET {field.column} = s.value FROM seed_values s "  # noqa: S608
            "WHERE t.id = s.id"
        )
        cursor.execute("DROP TABLE seed_values")


@contextmanager
def bulk_indexes_later(models: list) -> Iterator[None]:
    """Drop the secondary indexes, unique and foreign-key constraints of ``models``'
    tables for the load, and build them again after it (PostgreSQL; elsewhere a no-op).

    Primary keys stay (children's ids are read from them). Inside a transaction:
    a failed load leaves the database as it was.
    """
    if connection.vendor != "postgresql":
        yield
        return
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        # Constraints first (a unique constraint owns its index), foreign keys last to come back.
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
            "FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u') "
            "ORDER BY contype DESC",
            [tables],
        )
        constraints = cursor.fetchall()
        # Every other index but the primary keys (and those the constraints own).
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _definition, _kind in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        for _name, definition in indexes:
            cursor.execute(definition)
        for table, name, definition, _kind in reversed(constraints):
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


# Per tracked model: when its first history row was written, and by whom (the
# person who created the row; NULL is the system).
HISTORY_ORIGIN = {
    "Deal": ("created_at", "rep_id"),
    "Customer": ("created_at", "owner_id"),
    "Payment": ("recorded_at", "recorded_by_id"),
    "Invoice": ("issued_at", "issued_by_id"),
    "User": ("date_joined", None),
}


def history_rows(tracked: list) -> dict[str, int]:
    """The change history as the app writes it, one ``INSERT … SELECT`` per table.

    Every row has its creation ('+', by the person who made it). A deal that moved
    on from promised also has its last stage move ('~', the stage's before and
    after in ``history_changes``), as the deal page's timeline reads it.
    """
    written = {}
    with connection.cursor() as cursor:
        for model in tracked:
            history = model.history.model
            when, who = HISTORY_ORIGIN[model.__name__]
            source = {f.column for f in model._meta.concrete_fields}
            columns, values = [], []
            for f in history._meta.concrete_fields:
                if f.column in source:
                    columns.append(f.column)
                    values.append(f"t.{connection.ops.quote_name(f.column)}")
            extra = {
                "history_date": f"t.{when}",
                "history_type": "'+'",
                "history_user_id": f"t.{who}" if who else "NULL",
                "history_via": "''",
                "history_changes": "'[]'",
                "history_fields": "''",
            }
            if any(f.column == "roles" for f in history._meta.concrete_fields):
                extra["roles"] = "''"
            columns += list(extra)
            values += list(extra.values())
            table = connection.ops.quote_name(history._meta.db_table)
            names = ", ".join(connection.ops.quote_name(c) for c in columns)
            # Rows made before the seed (a demo's) have their history already.
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {', '.join(values)} "  # noqa: S608
                f"FROM {connection.ops.quote_name(model._meta.db_table)} t "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} h WHERE h.id = t.id)"
            )
            written[model.__name__] = cursor.rowcount
            if model.__name__ == "Deal":
                moved = [
                    v if c not in extra else repr_moved(c)
                    for c, v in zip(columns, values, strict=True)
                ]
                cursor.execute(
                    f"INSERT INTO {table} ({names}) SELECT {', '.join(moved)} "  # noqa: S608
                    f"FROM {connection.ops.quote_name(model._meta.db_table)} t "
                    f"WHERE t.stage <> 'promised' AND NOT EXISTS (SELECT 1 FROM {table} h "
                    "WHERE h.id = t.id AND h.history_type = '~')"
                )
                written["Deal"] += cursor.rowcount
    return written


def repr_moved(column: str) -> str:
    """The SQL of a history column for a deal's last stage move."""
    moved = '\'[["stage", "promised", "\' || t.stage || \'"]]\''
    if connection.vendor == "postgresql":
        moved = f"({moved})::jsonb"
    return {
        "history_date": "t.stage_changed_at",
        "history_type": "'~'",
        "history_user_id": "t.rep_id",
        "history_via": "''",
        "history_changes": moved,
        "history_fields": "',stage,'",
    }[column]


def outbox_rows(recent: int) -> int:
    """The ``deal_changed`` outbox as a live system has it: the last ``recent``
    deals to change, not yet caught up by the worker (the rest were drained)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pipeline_dealchange (deal_id, changed_at, actor_id, claimed_until) "
            "SELECT id, stage_changed_at, rep_id, NULL FROM pipeline_deal "
            "ORDER BY stage_changed_at DESC, id DESC LIMIT %s",
            [recent],
        )
        return cursor.rowcount


def analyze() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
