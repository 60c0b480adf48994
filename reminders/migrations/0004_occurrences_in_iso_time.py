"""Occurrences that carry a time are written by Python now, in ISO 8601 UTC
(``2026-11-29T16:00:00+00:00``), not by the database's cast of a timestamp to
text (which differs between PostgreSQL and SQLite). Existing rows are
rewritten, so a fact keeps its one reminder."""

from datetime import UTC, datetime

from django.db import migrations

TIMED = ("audit_retry", "audit_flaked", "audit_disputed")


def _iso(text: str) -> str:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def rewrite(old: str) -> str:
    if old.startswith("a") and "@" in old:  # audit retry: a<audit id>@<next call>
        head, _, moment = old.partition("@")
        return f"{head}@{_iso(moment)}"
    moment, slash, who = old.rpartition("/")  # flaked / disputed: <flag time>/<rep|manager>
    return f"{_iso(moment)}{slash}{who}" if slash else old


def forwards(apps, schema_editor):
    Reminder = apps.get_model("reminders", "Reminder")
    for reminder in Reminder.objects.filter(kind__in=TIMED).only("pk", "occurrence").iterator():
        try:
            new = rewrite(reminder.occurrence)
        except ValueError:
            continue  # not a time: written by hand or by a test, left as it is
        if new != reminder.occurrence:
            Reminder.objects.filter(pk=reminder.pk).update(occurrence=new)


class Migration(migrations.Migration):
    dependencies = [("reminders", "0003_single_flight_jobs")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
