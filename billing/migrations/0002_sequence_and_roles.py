"""The invoice counter's one row, and what each role may see of billing in the admin.

Access to individual deals' money is decided in code (``Deal.objects.visible_to``);
these permissions say what staff managers may open in the admin, where every
ledger is read-only.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Manager": [
        "billing.view_payment",
        "billing.view_paymentevent",
        "billing.view_invoice",
        "billing.view_paymentmethod",
        "billing.view_paymentplan",
        "billing.view_instalment",
        "billing.view_termsexception",
        "billing.view_commissionentry",
        "billing.view_commissionrate",
        "billing.add_commissionrate",
        "billing.change_commissionrate",
    ],
}


def create_sequence_and_roles(apps, schema_editor):
    apps.get_model("billing", "InvoiceSequence").objects.get_or_create(pk=1)
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group = apps.get_model("auth", "Group").objects.filter(name=role).first()
        if group is not None:
            codenames = [perm.split(".")[1] for perm in perms]
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="billing", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_money"),
        ("pipeline", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_sequence_and_roles, remove_roles)]
