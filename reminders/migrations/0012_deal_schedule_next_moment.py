"""Each deal's next moment (``DealSchedule``), and every existing deal due at once.

The backfill is one set-based INSERT … SELECT: every deal gets a row whose
moment is now, so the first scans decide each deal once (in batches, under
their lease; ``manage.py reminders_schedule`` does it at once and times it)
and write its real next moment. Nothing is guessed in SQL: the rules, in
Python, are the one place that knows their clocks.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def every_deal_due_now(apps, schema_editor):
    schedule = apps.get_model("reminders", "DealSchedule")._meta.db_table
    deal = apps.get_model("pipeline", "Deal")._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {schedule} (deal_id, next_at) SELECT id, %s FROM {deal}",  # noqa: S608
            [schema_editor.connection.ops.adapt_datetimefield_value(timezone.now())],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0028_historical_deal_seller"),
        ("reminders", "0011_every_reminder_kind"),
    ]

    operations = [
        migrations.CreateModel(
            name="DealSchedule",
            fields=[
                (
                    "deal",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="pipeline.deal",
                    ),
                ),
                ("next_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("next_at__isnull", False)),
                        fields=["next_at"],
                        name="deal_schedule_next",
                    )
                ],
            },
        ),
        migrations.RunPython(every_deal_due_now, migrations.RunPython.noop, elidable=True),
    ]
