"""The Reminder and ReminderDigest models now belong to the reminders app.

State only: the tables, rows, constraints and indexes stay as they are
(``reminders.0001_initial`` takes the models over with ``Meta.db_table``).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0017_mask_invoicing_exception_copy"),
        ("reminders", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ReminderDigest"),
                migrations.DeleteModel(name="Reminder"),
            ],
        ),
    ]
