"""The content types (and so the permissions) of Reminder and ReminderDigest follow
them from pipeline to reminders: renamed in place, so every permission a group or a
person holds on them keeps its id. Nothing else is written."""

from django.db import migrations

MODELS = ("reminder", "reminderdigest")


def _relabel(apps, schema_editor, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    taken = set(
        ContentType.objects.using(db)
        .filter(app_label=target, model__in=MODELS)
        .values_list("model", flat=True)
    )
    ContentType.objects.using(db).filter(app_label=source, model__in=MODELS).exclude(
        model__in=taken
    ).update(app_label=target)


def forwards(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, "pipeline", "reminders")


def backwards(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, "reminders", "pipeline")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("reminders", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=True)]
