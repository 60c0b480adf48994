"""The roles of DOMAIN.md as Django groups with their model permissions.

Access to individual deals is decided in code (``Deal.objects.visible_to``);
these permissions say what each role may do at all, and give staff a place to
see it in the admin.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Rep": [
        "pipeline.view_customer",
        "pipeline.add_customer",
        "pipeline.change_customer",
        "pipeline.view_deal",
        "pipeline.add_deal",
        "pipeline.change_deal",
        "pipeline.view_touch",
        "pipeline.add_touch",
        "pipeline.view_stageevent",
    ],
    "Manager": [
        "pipeline.view_customer",
        "pipeline.add_customer",
        "pipeline.change_customer",
        "pipeline.view_deal",
        "pipeline.add_deal",
        "pipeline.change_deal",
        "pipeline.view_touch",
        "pipeline.add_touch",
        "pipeline.view_stageevent",
        "pipeline.view_user",
    ],
    "Auditor": ["pipeline.view_customer", "pipeline.view_deal"],
}


def create_roles(apps, schema_editor):
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
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
