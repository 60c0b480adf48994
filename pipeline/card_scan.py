"""Look for full card numbers already stored: the safety net behind the masked fields.

``find_card_numbers`` reads every text column (char, text and JSON: every
string inside a JSON document) of every table in the database: Cleared's
apps, and the libraries' too (the login throttle's access log, users and
groups, the admin's log, sessions, two-factor devices), and any table no
model describes. It returns what the masker would mask. The fields mask on
the way in (and the login throttle stores masked usernames:
``pipeline.accounts.throttle_username``), so on a healthy database it finds
nothing; it is run by operators (``manage.py find_card_numbers``), by CI on
the demo database, and after every test of the suite (``tests/conftest.py``).

The columns that are deliberately not masked are listed in ``UNMASKED``
with the reason; the scanner reads them too, since nothing should hold a
card number, whatever its purpose. ``NOT_SCANNED`` are the few it skips:
hashes and secrets in hex, whose digits mean nothing.
"""

import functools
import json
from dataclasses import dataclass

from django.apps import apps as django_apps
from django.db import connections, models

from pipeline.masking import MIN_DIGITS, contains_card_number, json_strings, mask_card_numbers

# Text columns left unmasked on purpose ("app.Model.field": why). Fields with
# ``choices`` are codes validated against a fixed list and need no entry.
UNMASKED = {
    "pipeline.User.username": "the login id: masking it would lock its owner out",
    "pipeline.User.password": "a salted hash; not scanned either (its digits mean nothing)",
    "pipeline.HistoricalUser.username": "the history's copy of the login id (see above)",
    "reminders.Reminder.occurrence": (
        "a code made by Cleared (a date, an id, a rung); part of a key"
    ),
    "reminders.ReminderDigest.recipient": 'a code made by Cleared ("user:<id>", "queue:<name>")',
    "billing.PaymentMethod.last4": "four characters at most: never a full number",
    "billing.WebhookEvent.event_id": "the processor's event id: masking it could make two "
    "events one and drop the second as a replay",
    "billing.WebhookEvent.type": "checked against the known event types before it is saved",
    "pipeline.NotPaidTotal.stage": "a deal's stage code, copied by the database's trigger "
    "(pipeline/not_paid.py): the trigger writes it, no person does",
    "receivables.CustomerEmail.message_id": "made by Cleared of letters only "
    "(receivables.mail.new_message_id); the same on every retry, so it must not change",
}
# Columns not read at all ("app.Model.field", or "table.column" for a table no
# model describes: why). A hex string is a run of digits here and there, and
# one in a few dozen holds a Luhn-valid window; so does a migration's date.
NOT_SCANNED = {
    "pipeline.User.password": "a salted hash",
    "otp_totp.TOTPDevice.key": "the authenticator's secret, in hex",
    "axes.AccessLog.session_hash": "a SHA-256 of the session key, in hex",
    "django_migrations.name": 'migration file names, dated ("0002_auto_20170228_2044")',
    "pipeline.HistoricalUser.password": "the history's copy of a salted hash",
    "api.ApiToken.digest": "a SHA-256 of the API token, in hex",
    "api.IdempotentResponse.key": "a SHA-256 of the client's Idempotency-Key, in hex",
    "api.IdempotentResponse.request_digest": "a SHA-256 of the request, in hex",
    "hooks.CalendarFeed.token_hash": "a SHA-256 of the calendar address's secret, in hex",
}
# Column types (as Django's introspection names them) that hold text.
_TEXT_TYPES = {"CharField", "TextField", "JSONField"}
_PREVIEW_CHARS = 60


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    pk: object
    preview: str  # masked: never the full number

    def __str__(self) -> str:
        return f"{self.table}.{self.column} pk={self.pk}: {self.preview}"


def text_fields(model) -> list[models.Field]:
    """The concrete text columns of ``model``: char, text and JSON."""
    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField | models.JSONField)
        and f"{model._meta.label}.{field.name}" not in NOT_SCANNED
    ]


def _preview(text: str) -> str:
    masked = " ".join(mask_card_numbers(text).split())
    at = masked.find("••••")
    start = max(0, at - _PREVIEW_CHARS // 2)
    snippet = masked[start : start + _PREVIEW_CHARS]
    return ("…" if start else "") + snippet + ("…" if start + _PREVIEW_CHARS < len(masked) else "")


def _card_string(value) -> str | None:
    """The first string holding a card number in a column's value, or None."""
    if isinstance(value, str):
        return value if contains_card_number(value) else None
    for text in json_strings(value):
        if contains_card_number(text):
            return text
    return None


@dataclass(frozen=True)
class _Column:
    table: str
    column: str
    pk: str | None  # the primary key column; None for a table without a single one
    is_json: bool


def _model_columns() -> dict[str, tuple[models.Model, dict[str, models.Field]]]:
    """Table name -> (model, its concrete fields by column), for every installed model."""
    found = {}
    for model in django_apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = {field.column: field for field in model._meta.concrete_fields}
        found.setdefault(model._meta.db_table, (model, fields))
    return found


def _is_text(
    table: str, column: str, model, field: models.Field | None, introspected: str
) -> tuple[bool, bool]:
    """(scanned, is JSON) for one column: the model's field decides where there is one."""
    if f"{table}.{column}" in NOT_SCANNED:
        return False, False
    if field is not None:
        if f"{model._meta.label}.{field.name}" in NOT_SCANNED:
            return False, False
        is_text = isinstance(field, models.CharField | models.TextField | models.JSONField)
        return is_text, isinstance(field, models.JSONField)
    return introspected in _TEXT_TYPES, introspected == "JSONField"


def _columns(using: str) -> list[_Column]:
    """Every text column of every table of the database (cached per database)."""
    connection = connections[using]
    return _columns_of(using, connection.vendor, str(connection.settings_dict["NAME"]))


@functools.cache
def _columns_of(using: str, vendor: str, name: str) -> list[_Column]:
    connection = connections[using]
    introspection = connection.introspection
    known = _model_columns()
    columns = []
    with connection.cursor() as cursor:
        for table in sorted(introspection.table_names(cursor)):
            model, fields = known.get(table, (None, {}))
            primary = introspection.get_primary_key_columns(cursor, table) or []
            for described in introspection.get_table_description(cursor, table):
                try:
                    introspected = introspection.get_field_type(described.type_code, described)
                except KeyError:  # a type Django has no field for: not text
                    continue
                scanned, is_json = _is_text(
                    table, described.name, model, fields.get(described.name), introspected
                )
                if scanned:
                    pk = primary[0] if len(primary) == 1 else None
                    columns.append(_Column(table, described.name, pk, is_json))
    return columns


def tables_written_in_this_transaction(*, using: str = "default") -> set[str] | None:
    """PostgreSQL: the tables the open transaction inserted into or updated; else None."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return None
    tables = sorted({column.table for column in _columns(using)})
    with connection.cursor() as cursor:
        # pg_stat_xact_user_tables, but for the scanned tables only: far cheaper.
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r' "
            "AND pg_stat_get_xact_tuples_inserted(oid) + pg_stat_get_xact_tuples_updated(oid) > 0",
            [tables],
        )
        return {name for (name,) in cursor.fetchall()}


def find_card_numbers(*, using: str = "default", tables: set[str] | None = None) -> list[Finding]:
    """Every stored value of the database's text columns that holds a card number.

    One query for the whole database (a ``UNION ALL`` of every column, values
    shorter than a card number left out), so that running it after every test
    costs little; ``tables`` limits it to those tables.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    columns = _columns(using)
    # Table and column names come from the database's own catalogue, quoted;
    # nothing from a user.
    selects = [
        f"SELECT {index}, {_pk_sql(quote, column.pk)}, "  # noqa: S608
        f"CAST({quote(column.column)} AS TEXT) FROM {quote(column.table)} "
        f"WHERE LENGTH(CAST({quote(column.column)} AS TEXT)) >= {MIN_DIGITS}"
        for index, column in enumerate(columns)
        if tables is None or column.table in tables
    ]
    if not selects:
        return []
    findings = []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects))
        while rows := cursor.fetchmany(2000):
            for index, pk, value in rows:
                column = columns[index]
                text = _card_string(_decoded(value) if column.is_json else value)
                if text is not None:
                    findings.append(Finding(column.table, column.column, _pk(pk), _preview(text)))
    return sorted(findings, key=lambda finding: (finding.table, finding.column, str(finding.pk)))


def _pk_sql(quote, pk: str | None) -> str:
    return f"CAST({quote(pk)} AS TEXT)" if pk else "CAST(NULL AS TEXT)"


def _decoded(value: str):
    try:
        return json.loads(value)
    except ValueError:  # not JSON after all (a column no model describes): read it as text
        return value


def _pk(value: str | None):
    if value is None:
        return None
    return int(value) if value.isdigit() else value
