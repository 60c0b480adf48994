"""The Not paid yet totals, kept exact by the database in every writer's transaction.

The board's totals (outstanding money by stage, by age since the promise, and
what is rotting) used to be a scan of every unpaid deal behind a 30-second
cache. Here they are a summary, ``NotPaidTotal``: for each rep and stage, the
unpaid deals and their outstanding money per UTC day of the promise
(``axis = "promised"``: ages) and per UTC day of the last stage move
(``axis = "moved"``: rotting). A manager's board sums a few thousand rows, not
every deal, and the ages are computed at read time from the days
(``dashboards.board.board_totals``).

**Who keeps it.** Triggers on ``pipeline_deal`` (installed by the migration,
``install_triggers``): every INSERT, UPDATE or DELETE of a deal adds the new
rows' contribution and takes away the old rows' in the same statement, hence
the same transaction, as an upsert ``deals = deals + delta``. So every writer
keeps it without knowing: the services (promise, move, edit, handover, merge,
payments recorded, cleared, bounced, charged back or refunded, since they all
write the deal's money copies), the importer, the admin, a raw UPDATE in a
shell, the bulk COPY of ``seed_scale``. Concurrent writers never lose an
increment: the upsert re-reads the row under its lock. On PostgreSQL one
statement-level trigger applies a statement's deltas grouped and in key
order (a handover of 500 deals is one upsert of a few rows); SQLite gets the
same rule as row triggers.

**Folded.** Nobody tells apart two promise days older than ``AGES_SEEN_DAYS``
(the board's oldest bucket starts at 90 days), nor two move days older than
the longest rotting limit: ``fold`` (hourly, ``pipeline.fold_board_totals``;
and every rebuild) adds such rows into one row per rep, stage and axis dated
``LONG_AGO`` and deletes them. The summary then stays about 140 rows per rep
and stage however many years of deals are kept, and a write to an old deal
lands in a day row of its own again, folded next time (sums do not mind). A
rotting limit raised in the settings needs a rebuild (the fold kept no days
past the old one).

**Proof.** ``recount()`` counts the same figures from the deals, written
independently of the triggers (the ORM, not the triggers' SQL);
``check_board_totals`` compares the two (exit 1 on drift) and
``rebuild_board_totals`` replaces the summary by the recount, table-locked
against writers (the migration's backfill; bench on a seeded database).
TRUNCATE of the deals bypasses the triggers: rebuild after one.
"""

from datetime import UTC, date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from pipeline.models import Deal, visible_rep_condition
from pipeline.stages import NOT_PAID_STAGES, AuditFlag
from pipeline.terms import MONEY

# The Not paid yet board's deals: live, money not all cleared, and not disputed
# at audit (a disputed sale is off the billing path until its manager decides).
# The same condition as the partial index ``deal_not_paid_yet_totals`` and as
# the triggers' ``_NOT_PAID_SQL`` (``check_board_totals`` proves they agree).
NOT_PAID_YET = Q(stage__in=NOT_PAID_STAGES, cleared_amount__lt=F("amount")) & ~Q(
    audit_flag=AuditFlag.DISPUTED
)
OUTSTANDING = ExpressionWrapper(F("amount") - F("cleared_amount"), output_field=MONEY)


# The oldest promise day a reader tells apart (the board's 90+ bucket starts at
# 91 days; a few days more for time zones): older ones fold.
AGES_SEEN_DAYS = 100
LONG_AGO = date(1, 1, 1)  # the day of the folded rows


class Axis(models.TextChoices):
    PROMISED = "promised", "day of the promise"
    MOVED = "moved", "day of the last stage move"


class NotPaidTotalQuerySet(models.QuerySet):
    def visible_to(self, user) -> "NotPaidTotalQuerySet":
        """The rows of the reps whose deals ``user`` sees (``Deal.objects.visible_to``'s rule)."""
        condition = visible_rep_condition(user)
        return self if condition is None else self.filter(condition)


class NotPaidTotal(models.Model):
    """The unpaid deals of one rep in one stage on one UTC day, and their outstanding money.

    Written only by the triggers on the deals (``install_triggers``) and by
    ``rebuild``; a row whose deals went to 0 stays (a later deal reuses it)
    until the next rebuild.
    """

    pk = models.CompositePrimaryKey("rep", "stage", "axis", "day")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,  # the primary key starts with the rep
    )
    stage = models.CharField(max_length=20)
    axis = models.CharField(max_length=8, choices=Axis.choices)
    day = models.DateField()
    deals = models.BigIntegerField(default=0)
    outstanding = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0.00"))

    objects = NotPaidTotalQuerySet.as_manager()

    class Meta:
        db_table = "pipeline_notpaidtotal"

    def __str__(self) -> str:
        return f"rep {self.rep_id} {self.stage} {self.axis} {self.day}: {self.deals}"


# --- the triggers --------------------------------------------------------------------

TABLE = "pipeline_notpaidtotal"
_STAGES_SQL = ", ".join(f"'{stage.value}'" for stage in NOT_PAID_STAGES)


def _not_paid_sql(row: str) -> str:
    """``NOT_PAID_YET`` on a row of pipeline_deal (``row.`` prefix: NEW., OLD. or "")."""
    return (
        f"{row}stage IN ({_STAGES_SQL}) AND {row}cleared_amount < {row}amount "
        f"AND {row}audit_flag <> '{AuditFlag.DISPUTED.value}'"
    )


def _upsert(values: str) -> str:
    # The row's own columns unqualified (no alias: SQLite's triggers refuse one).
    return (
        f"INSERT INTO {TABLE} (rep_id, stage, axis, day, deals, outstanding) {values} "
        "ON CONFLICT (rep_id, stage, axis, day) DO UPDATE SET "
        f"deals = {TABLE}.deals + EXCLUDED.deals, "
        f"outstanding = {TABLE}.outstanding + EXCLUDED.outstanding"
    )


def _pg_rows(table: str, sign: str) -> str:
    """A statement's old or new rows as signed contributions, one per axis."""
    parts = [
        f"SELECT rep_id, stage, '{axis}' AS axis, ({column} AT TIME ZONE 'UTC')::date AS day, "  # noqa: S608
        f"{sign}1 AS deals, {sign}(amount - cleared_amount) AS outstanding "
        f"FROM {table} WHERE {_not_paid_sql('')}"
        for axis, column in ((Axis.PROMISED, "promised_at"), (Axis.MOVED, "stage_changed_at"))
    ]
    return " UNION ALL ".join(parts)


def _pg_apply(*row_sets: str) -> str:
    # Grouped (a statement's moves cancel out), and in key order, so two
    # writers taking the same rows take them in the same order.
    return _upsert(
        "SELECT rep_id, stage, axis, day, sum(deals), sum(outstanding) "  # noqa: S608
        f"FROM ({' UNION ALL '.join(row_sets)}) AS d GROUP BY rep_id, stage, axis, day "
        "HAVING sum(deals) <> 0 OR sum(outstanding) <> 0 ORDER BY rep_id, stage, axis, day"
    )


PG_TRIGGERS = f"""
CREATE OR REPLACE FUNCTION pipeline_not_paid_totals_keep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_apply(_pg_rows("new_rows", "+"))};
    ELSIF TG_OP = 'DELETE' THEN
        {_pg_apply(_pg_rows("old_rows", "-"))};
    ELSE
        {_pg_apply(_pg_rows("new_rows", "+"), _pg_rows("old_rows", "-"))};
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER pipeline_deal_not_paid_insert AFTER INSERT ON pipeline_deal
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pipeline_not_paid_totals_keep();
CREATE TRIGGER pipeline_deal_not_paid_update AFTER UPDATE ON pipeline_deal
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pipeline_not_paid_totals_keep();
CREATE TRIGGER pipeline_deal_not_paid_delete AFTER DELETE ON pipeline_deal
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pipeline_not_paid_totals_keep();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS pipeline_deal_not_paid_insert ON pipeline_deal;
DROP TRIGGER IF EXISTS pipeline_deal_not_paid_update ON pipeline_deal;
DROP TRIGGER IF EXISTS pipeline_deal_not_paid_delete ON pipeline_deal;
DROP FUNCTION IF EXISTS pipeline_not_paid_totals_keep();
"""


def _sqlite_row(row: str, sign: str) -> list[str]:
    # SQLite stores an aware datetime as UTC text: date() is its UTC day.
    return [
        _upsert(
            f"SELECT {row}.rep_id, {row}.stage, '{axis}', date({row}.{column}), {sign}1, "
            f"{sign}({row}.amount - {row}.cleared_amount) WHERE {_not_paid_sql(row + '.')}"
        )
        for axis, column in ((Axis.PROMISED, "promised_at"), (Axis.MOVED, "stage_changed_at"))
    ]


def _sqlite_trigger(name: str, event: str, statements: list[str]) -> str:
    body = "".join(f"{statement};\n" for statement in statements)
    return f"CREATE TRIGGER {name} AFTER {event} ON pipeline_deal BEGIN\n{body}END"


SQLITE_TRIGGERS = [
    _sqlite_trigger("pipeline_deal_not_paid_insert", "INSERT", _sqlite_row("NEW", "+")),
    _sqlite_trigger(
        "pipeline_deal_not_paid_update",
        "UPDATE",
        _sqlite_row("OLD", "-") + _sqlite_row("NEW", "+"),
    ),
    _sqlite_trigger("pipeline_deal_not_paid_delete", "DELETE", _sqlite_row("OLD", "-")),
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS pipeline_deal_not_paid_{event}"
    for event in ("insert", "update", "delete")
]


def install_triggers(schema_editor) -> None:
    """Create (or re-create) the triggers that keep ``NotPaidTotal``: the migration's job."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP + PG_TRIGGERS)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP + SQLITE_TRIGGERS:
            schema_editor.execute(statement)
    else:  # pragma: no cover - Cleared runs on PostgreSQL and SQLite only
        raise NotImplementedError(f"No Not paid yet triggers for {vendor}.")


def drop_triggers(schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP)
    else:
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


# --- the recount, the check and the rebuild -----------------------------------------


def _recounted(axis: str, column: str, deals=Deal):
    return (
        deals.objects.filter(NOT_PAID_YET)
        .annotate(axis=Value(axis), day=TruncDate(column, tzinfo=UTC))
        .order_by()
        .values("rep_id", "stage", "axis", "day")
        .annotate(deals=Count("*"), outstanding=Sum(OUTSTANDING))
    )


def recount() -> dict[tuple, tuple[int, Decimal]]:
    """What the summary must hold, counted from the deals:
    ``{(rep, stage, axis, day): (deals, outstanding)}``."""
    counted = {}
    for axis, column in ((Axis.PROMISED, "promised_at"), (Axis.MOVED, "stage_changed_at")):
        for row in _recounted(axis, column):
            key = (row["rep_id"], row["stage"], row["axis"], row["day"])
            counted[key] = (row["deals"], row["outstanding"])
    return counted


def summary() -> dict[tuple, tuple[int, Decimal]]:
    """What the summary holds."""
    rows = NotPaidTotal.objects.values_list(
        "rep_id", "stage", "axis", "day", "deals", "outstanding"
    )
    return {row[:4]: (row[4], row[5]) for row in rows}


def fold_days(today: date | None = None) -> dict[str, date]:
    """Per axis, the first day still kept apart: older days fold into ``LONG_AGO``."""
    today = today or timezone.now().astimezone(UTC).date()
    rotting_seen = max(settings.CLEARED_ROTTING_DAYS.values(), default=0) + 3
    return {
        Axis.PROMISED: today - timedelta(days=AGES_SEEN_DAYS),
        Axis.MOVED: today - timedelta(days=rotting_seen),
    }


def _folded(rows: dict, today: date | None = None) -> dict:
    """``rows`` as a fold would leave them (and without empty rows): what to compare."""
    first_kept = fold_days(today)
    folded = {}
    for (rep, stage, axis, day), (deals, money) in rows.items():
        key = (rep, stage, axis, LONG_AGO if day < first_kept[axis] else day)
        before = folded.get(key, (0, Decimal("0.00")))
        folded[key] = (before[0] + deals, before[1] + money)
    return {key: value for key, value in folded.items() if value != (0, 0)}


def drift() -> list[tuple[tuple, tuple | None, tuple | None]]:
    """Every key where the summary and a recount disagree: (key, summary's, recount's).

    Read in one snapshot (REPEATABLE READ on PostgreSQL), so a write committing
    meanwhile is in both or in neither.
    """
    outermost = not connection.in_atomic_block  # inside a caller's, its snapshot rules
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        kept, counted = _folded(summary()), _folded(recount())
    return [
        (key, kept.get(key), counted.get(key))
        for key in sorted(kept.keys() | counted.keys(), key=str)
        if kept.get(key) != counted.get(key)
    ]


def rebuild(deals=Deal) -> int:
    """Replace the summary by a recount of the deals, set-based; returns its rows.

    The deals are locked against writers meanwhile (readers go on), so no
    trigger adds to a table being replaced. ``deals``: the model (the
    migration passes its historical one).
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("LOCK TABLE pipeline_deal IN SHARE MODE")
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
        for axis, column in ((Axis.PROMISED, "promised_at"), (Axis.MOVED, "stage_changed_at")):
            sql, params = _recounted(axis, column, deals).query.sql_with_params()
            cursor.execute(
                f"INSERT INTO {TABLE} (rep_id, stage, axis, day, deals, outstanding) {sql}",  # noqa: S608
                params,
            )
        fold()
        cursor.execute(f"SELECT count(*) FROM {TABLE}")  # noqa: S608
        return cursor.fetchone()[0]


def fold(today: date | None = None) -> int:
    """Add the rows of days nobody tells apart any more into their ``LONG_AGO`` row
    and delete them, and delete empty rows; returns how many rows it wrote or deleted.

    On PostgreSQL one statement deletes and re-adds what it deleted (a
    trigger's increment to a row being folded waits for it, then lands in a
    new row); SQLite's one writer at a time makes two statements as safe.
    """
    first_kept = fold_days(today)
    old = "(axis = %s AND day < %s OR axis = %s AND day < %s) AND day <> %s"
    params = [Axis.PROMISED, first_kept[Axis.PROMISED], Axis.MOVED, first_kept[Axis.MOVED]]
    params.append(LONG_AGO)
    add = _upsert(
        "SELECT rep_id, stage, axis, %s, sum(deals), sum(outstanding) FROM {rows} "  # noqa: S608
        "WHERE {where} GROUP BY rep_id, stage, axis ORDER BY rep_id, stage, axis"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH gone AS (DELETE FROM {TABLE} WHERE {old} RETURNING *) "  # noqa: S608
                + add.format(rows="gone", where="true"),
                [*params, LONG_AGO],
            )
        else:
            cursor.execute(add.format(rows=TABLE, where=old), [LONG_AGO, *params])
            cursor.execute(f"DELETE FROM {TABLE} WHERE {old}", params)  # noqa: S608
        folded = cursor.rowcount
        cursor.execute(f"DELETE FROM {TABLE} WHERE deals = 0 AND outstanding = 0")  # noqa: S608
        return folded + cursor.rowcount
