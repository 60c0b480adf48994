"""The first call script, and what each role may do with audits at all.

Which audit a person may touch is decided in audits.views and audits.services
(segregation of duties); these model permissions only say it in the admin.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SCRIPT_V1 = {
    "version": 1,
    "opening": (
        "Hello, I'm calling from the order desk to confirm the order $company placed "
        "with $rep. It takes two minutes; this call is recorded."
    ),
    "identity": "Am I speaking with $customer, and may I confirm a couple of details with you?",
    "purchase": "You agreed with $rep to buy: $what. Is that right?",
    "price": "The price agreed is $amount. Is that correct?",
    "terms": (
        "Payment: $payment, with $deposit; delivery is expected on $delivery. "
        "Is that what you agreed to?"
    ),
    "right_to_cancel": (
        "You can cancel this order before delivery by calling $rep on $rep_phone. "
        "Do you understand your right to cancel?"
    ),
    "closing": "Thank you, your order is confirmed. $rep will be in touch about the delivery.",
}

ROLE_PERMISSIONS = {
    "Rep": ["audits.add_wrapupchecklist", "audits.view_wrapupchecklist", "audits.view_audit"],
    "Manager": [
        "audits.view_wrapupchecklist",
        "audits.view_audit",
        "audits.view_callattempt",
        "audits.view_callscript",
    ],
    "Auditor": [
        "audits.view_audit",
        "audits.change_audit",
        "audits.add_callattempt",
        "audits.view_callattempt",
        "audits.view_callscript",
        "audits.view_wrapupchecklist",
    ],
}


def forwards(apps, schema_editor):
    CallScript = apps.get_model("audits", "CallScript")
    if not CallScript.objects.filter(version=1).exists():
        CallScript.objects.create(**SCRIPT_V1)
    app_config = apps.get_app_config("audits")
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


class Migration(migrations.Migration):
    dependencies = [
        ("audits", "0001_initial"),
        ("pipeline", "0002_roles"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
