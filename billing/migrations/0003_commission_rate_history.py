"""A rep's commission rate becomes a history: each rate is in force from a day on.

The one rate a rep had is kept, in force from the day it was set (commission
entries copy their rate, so nothing already earned changes). Managers now set
rates on the Team page; the admin is for superusers, so the Manager role loses
the admin's add/change permissions on rates.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

ADMIN_ONLY = ["add_commissionrate", "change_commissionrate"]


def from_the_day_it_was_set(apps, schema_editor):
    CommissionRate = apps.get_model("billing", "CommissionRate")
    for rate in CommissionRate.objects.filter(effective_from__isnull=True):
        rate.effective_from = timezone.localdate(rate.set_at)
        rate.save(update_fields=["effective_from"])


def managers_set_rates_in_the_app(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="Manager").first()
    if group is not None:
        group.permissions.remove(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="billing", codename__in=ADMIN_ONLY
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_sequence_and_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="commissionrate",
            name="effective_from",
            field=models.DateField(null=True),
        ),
        migrations.RunPython(from_the_day_it_was_set, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="commissionrate",
            name="effective_from",
            field=models.DateField(help_text="The first day (the rep's own) it is in force."),
        ),
        migrations.AlterField(
            model_name="commissionrate",
            name="rep",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="commission_rates",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterModelOptions(
            name="commissionrate",
            options={"ordering": ["rep", "-effective_from", "-id"]},
        ),
        migrations.AddIndex(
            model_name="commissionrate",
            index=models.Index(
                fields=["rep", "-effective_from", "-id"], name="commission_rate_in_force"
            ),
        ),
        migrations.RunPython(managers_set_rates_in_the_app, migrations.RunPython.noop),
    ]
