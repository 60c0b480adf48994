"""Look for full card numbers already stored: the safety net behind the masked fields.

``find_card_numbers`` reads every text column (``CharField`` and its kin,
``TextField``, ``JSONField``: every string inside a JSON document) of every
table of Cleared's apps and returns what the masker would mask. The fields
mask on the way in, so on a healthy database it finds nothing; it is run by
operators (``manage.py find_card_numbers``), by CI on the demo database, and
after every test of the suite (``tests/conftest.py``).

The columns that are deliberately not masked are listed in ``UNMASKED``
with the reason; the scanner reads them too, since nothing should hold a
card number, whatever its purpose.
"""

import functools
import json
from dataclasses import dataclass

from django.apps import apps as django_apps
from django.db import connections, models

from pipeline.masking import MIN_DIGITS, contains_card_number, json_strings, mask_card_numbers

APP_LABELS = ("pipeline", "billing", "audits")

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
    "billing.CustomerEmail.message_id": "made by Cleared of letters only "
    "(receivables.mail.new_message_id); the same on every retry, so it must not change",
}
_NOT_SCANNED = {"pipeline.User.password"}
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
        and f"{model._meta.label}.{field.name}" not in _NOT_SCANNED
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


@functools.cache
def _columns(app_labels: tuple[str, ...]) -> list[tuple[str, str, str, bool]]:
    """(table, column, primary key column, is JSON) for every scanned column."""
    return [
        (
            model._meta.db_table,
            field.column,
            model._meta.pk.column,
            isinstance(field, models.JSONField),
        )
        for label in app_labels
        for model in django_apps.get_app_config(label).get_models()
        if not model._meta.proxy
        for field in text_fields(model)
    ]


def tables_written_in_this_transaction(*, using: str = "default") -> set[str] | None:
    """PostgreSQL: the tables the open transaction inserted into or updated; else None."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return None
    tables = sorted({table for table, *_ in _columns(APP_LABELS)})
    with connection.cursor() as cursor:
        # pg_stat_xact_user_tables, but for our tables only: far cheaper.
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r' "
            "AND pg_stat_get_xact_tuples_inserted(oid) + pg_stat_get_xact_tuples_updated(oid) > 0",
            [tables],
        )
        return {name for (name,) in cursor.fetchall()}


def find_card_numbers(
    *, using: str = "default", app_labels=APP_LABELS, tables: set[str] | None = None
) -> list[Finding]:
    """Every stored value of ``app_labels``' text columns that holds a card number.

    One query for the whole database (a ``UNION ALL`` of every column, values
    shorter than a card number left out), so that running it after every test
    costs little; ``tables`` limits it to those tables.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    columns = _columns(tuple(app_labels))
    # Table and column names come from the models, quoted; nothing from a user.
    selects = [
        f"SELECT {index}, CAST({quote(pk)} AS TEXT), CAST({quote(column)} AS TEXT) "  # noqa: S608
        f"FROM {quote(table)} WHERE LENGTH(CAST({quote(column)} AS TEXT)) >= {MIN_DIGITS}"
        for index, (table, column, pk, _) in enumerate(columns)
        if tables is None or table in tables
    ]
    if not selects:
        return []
    findings = []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects))
        while rows := cursor.fetchmany(2000):
            for index, pk, value in rows:
                table, column, _, is_json = columns[index]
                text = _card_string(json.loads(value) if is_json else value)
                if text is not None:
                    findings.append(Finding(table, column, _pk(pk), _preview(text)))
    return sorted(findings, key=lambda finding: (finding.table, finding.column, finding.pk))


def _pk(value: str):
    return int(value) if value.isdigit() else value
