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

from django.db import connections, router
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
        return ids if connection.vendor == "postgresql" else json.dumps(ids)


class InBatch(Lookup):
    """``lhs`` is one of a list of ids given as one parameter (the slot ``name``):
    ``= ANY(%s)`` on PostgreSQL (the plan of an ``IN (…)`` list), ``IN (SELECT
    value FROM json_each(%s))`` elsewhere. Used as ``.filter(InBatch(F("deal_id"),
    "ids"))``."""

    lookup_name = "in_batch"
    prepare_rhs = False

    def __init__(self, lhs, name: str):
        super().__init__(lhs, _IdList(name))

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", (*lhs_params, self.rhs)
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
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not converters:
            return rows
        return [_converted(row, converters, connection) for row in rows]

    def count(self, *build_args, key=(), using: str | None = None, **values) -> int:
        """How many rows the query returns, counted by the database."""
        sql, params, _converters, connection = self._prepared(build_args, key, using, values)
        with connection.cursor() as cursor:
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


def _converted(row, converters: dict, connection) -> tuple:
    row = list(row)
    for position, (functions, expression) in converters.items():
        value = row[position]
        for convert in functions:
            value = convert(value, expression, connection)
        row[position] = value
    return tuple(row)
