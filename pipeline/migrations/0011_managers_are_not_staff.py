"""Managers are not staff: only superusers (operators) use the Django admin.

The demo used to make every manager staff, and the admin knows nothing of
teams; a staff flag now opens nothing (config/admin.py), and this takes it off
every user who is not a superuser so no one's account says otherwise.
"""

from django.db import migrations


def unstaff_non_superusers(apps, schema_editor):
    apps.get_model("pipeline", "User").objects.filter(is_staff=True, is_superuser=False).update(
        is_staff=False
    )


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0010_stamps")]

    operations = [migrations.RunPython(unstaff_non_superusers, migrations.RunPython.noop)]
