"""Queries built and compiled once, run many times with new values.

Building a queryset and compiling it to SQL costs the ORM about a millisecond
a query, every time, for SQL that is the same text each time. Where a query
runs very often with only some values changing (the reminders engine's batch
of deals, the board's totals at each read), it is built once with those values
left open: a ``Slot`` compiles to ``%s`` and is filled at each run, and
``InBatch`` tests a column against a whole list given as one parameter, so the
SQL does not change with the list's length. ``Compiled.rows`` then costs the
query's SQL and the ORM's converters of its columns, nothing more.
"""

import json
from collections.abc import Callable, Iterable

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections, models, router
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Expression, Field, Lookup, QuerySet


class Slot(Expression):
    """A value left open in a compiled query (``%s``), filled in at each run."""

    def __init__(self, name: str, output_field: Field | None = None):
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", [self]

    def fill(self, value, connection):
        return self.output_field.get_db_prep_value(value, connection)


class _IdList(Slot):
    """A list of ids given as one parameter (``InBatch``'s right-hand side)."""

    def fill(self, value: Iterable[int], connection):
        ids = [int(pk) for pk in value]  # whole numbers only, whatever the caller gave
        if connection.vendor == "postgresql":
            # An array literal: psycopg's dumper of a Python list scans every
            # element (~1 ms a batch of 200); the text is cast by the query.
            return "{" + ",".join(map(str, ids)) + "}"
        return json.dumps(ids)


class InBatch(Lookup):
    """``lhs`` is one of a list of ids given as one parameter (the slot ``name``):
    ``= ANY(%s::bigint[])`` on PostgreSQL (the plan of an ``IN (…)`` list), ``IN (SELECT
    value FROM json_each(%s))`` elsewhere. Used as ``.filter(InBatch(F("deal_id"),
    "ids"))``."""

    lookup_name = "in_batch"
    prepare_rhs = False

    def __init__(self, lhs, name: str):
        super().__init__(lhs, _IdList(name))

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", (*lhs_params, self.rhs)
        # lhs is the compiled column: no value is ever in the text.
        return f"{lhs} IN (SELECT value FROM json_each(%s))", (*lhs_params, self.rhs)  # noqa: S608


class Compiled:
    """A query ``build()`` returns (a ``values_list``), compiled once per database.

    ``rows(**values)`` runs it with each slot filled from ``values`` by name
    and returns its rows as the ORM would (each column through its converters:
    Decimal amounts, aware datetimes, booleans on every database). ``key``
    (optional) names what else the SQL depends on: one compiled query per key
    (e.g. a team), at most ``max_keys`` kept.
    """

    def __init__(self, build: Callable[..., QuerySet], *, max_keys: int = 1024):
        self.build = build
        self.max_keys = max_keys
        self._compiled: dict[tuple, tuple] = {}

    def rows(self, *build_args, key=(), using: str | None = None, **values) -> list[tuple]:
        sql, params, converters, connection = self._prepared(build_args, key, using, values)
        with _cursor(connection) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not converters:
            return rows
        return [_converted(row, converters, connection) for row in rows]

    def count(self, *build_args, key=(), using: str | None = None, **values) -> int:
        """How many rows the query returns, counted by the database."""
        sql, params, _converters, connection = self._prepared(build_args, key, using, values)
        with _cursor(connection) as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) counted", params)  # noqa: S608
            return cursor.fetchone()[0]

    def _prepared(self, build_args, key, using, values) -> tuple:
        alias = using or self._alias(build_args)
        compiled = self._compiled.get((alias, key))
        if compiled is None:
            if len(self._compiled) >= self.max_keys:
                self._compiled.clear()
            compiled = self._compiled[(alias, key)] = self._compile(alias, build_args)
        sql, params, converters = compiled
        connection = connections[alias]
        filled = [p.fill(values[p.name], connection) if isinstance(p, Slot) else p for p in params]
        return sql, filled, converters, connection

    def _alias(self, build_args) -> str:
        if not hasattr(self, "_model"):
            self._model = self.build(*build_args).model
        return router.db_for_read(self._model)

    def _compile(self, alias: str, build_args) -> tuple:
        query = self.build(*build_args).query
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        columns = [select[0] for select in compiler.select[: compiler.col_count]]
        return sql, tuple(params), compiler.get_converters(columns)


def where_key(queryset: QuerySet) -> tuple[str, tuple] | None:
    """The SQL and parameters of ``queryset``'s conditions, as a ``Compiled`` key
    (e.g. whose deals a person sees): ("", ()) when it keeps every row, None when
    it keeps none (the caller answers without a query)."""
    query = queryset.query
    connection = connections[queryset.db]
    try:
        sql, params = query.get_compiler(connection=connection).compile(query.where)
    except FullResultSet:
        return "", ()
    except EmptyResultSet:
        return None
    return sql, tuple(params)


def _cursor(connection):
    """A cursor that prepares its statements on PostgreSQL: server-side binding
    (the ORM's own cursors bind in the client, which cannot prepare), wrapped as
    Django wraps every cursor (its errors, ``execute_wrappers``, the query log)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    # As connection.cursor() opens one: health check, connection, errors, thread.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    connection.validate_thread_sharing()
    if connection.queries_logged:
        return _LoggedCursor(raw, connection)
    return connection.make_cursor(raw)


class _LoggedCursor(CursorDebugWrapper):
    """Django's debug cursor, logging the statement with its values in it (as it
    logs the ORM's): a prepared statement's own text is not kept by psycopg."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


def _converted(row, converters: dict, connection) -> tuple:
    row = list(row)
    for position, (functions, expression) in converters.items():
        value = row[position]
        for convert in functions:
            value = convert(value, expression, connection)
        row[position] = value
    return tuple(row)


# Fields whose Python value is the value PostgreSQL is sent (the ORM's
# get_db_prep_save hands it on unchanged); any other field (a masked one, JSON,
# a decimal) is prepared by the field itself.
_AS_IS = {
    models.BigAutoField,
    models.BigIntegerField,
    models.IntegerField,
    models.PositiveIntegerField,
    models.ForeignKey,
    models.OneToOneField,
    models.CharField,
    models.TextField,
    models.DateTimeField,
    models.DateField,
    models.BooleanField,
}
_INSERTS: dict[tuple, str] = {}


def bulk_insert(model, objs: list, *, unique_fields=(), update_fields=()) -> None:
    """``model.objects.bulk_create(objs, …)``: with ``update_fields``, an upsert on
    ``unique_fields``; without, rows that break a unique constraint are skipped
    (``ignore_conflicts``).

    On PostgreSQL, one prepared ``INSERT … SELECT FROM unnest(…)`` of a binary
    array per column: the same statement Django writes, without its per-value
    Python (each value of each row through its field: ~0.2 ms a reminder row,
    a sixth of the reminders engine's hour). Elsewhere, ``bulk_create`` itself.
    Objects get no primary key back.
    """
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        if update_fields:
            model.objects.bulk_create(
                objs,
                update_conflicts=True,
                unique_fields=unique_fields,
                update_fields=update_fields,
            )
        else:
            model.objects.bulk_create(objs, ignore_conflicts=True)
        return
    # As bulk_create: every column but a generated one and the id the database gives.
    fields = [
        f
        for f in model._meta.concrete_fields
        if f is not model._meta.auto_field and not f.generated
    ]
    key = (model, tuple(unique_fields), tuple(update_fields))
    sql = _INSERTS.get(key)
    if sql is None:
        sql = _INSERTS[key] = _insert_sql(model, fields, unique_fields, update_fields, connection)
    columns = []
    for field in fields:
        values = [field.pre_save(obj, True) for obj in objs]  # auto_now and the like
        if type(field) not in _AS_IS:
            values = [field.get_db_prep_save(value, connection) for value in values]
        columns.append(values)
    with _cursor(connection) as cursor:
        cursor.execute(sql, columns)


def _insert_sql(model, fields, unique_fields, update_fields, connection) -> str:
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    # Without the type's length, as Django's own unnest insert: varchar[], not
    # varchar(24)[], whose cast would cut a value too long instead of refusing it.
    arrays = ", ".join(f"%b::{f.db_type(connection).split('(')[0]}[]" for f in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays}) "  # noqa: S608
    if not update_fields:
        return sql + "ON CONFLICT DO NOTHING"
    unique = ", ".join(quote(model._meta.get_field(name).column) for name in unique_fields)
    updates = ", ".join(
        f"{quote(c)} = EXCLUDED.{quote(c)}"
        for c in (model._meta.get_field(name).column for name in update_fields)
    )
    return sql + f"ON CONFLICT ({unique}) DO UPDATE SET {updates}"
