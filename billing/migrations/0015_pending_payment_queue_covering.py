from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0014_commission_rep_at_index_only"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="payment",
            name="pending_payment_queue",
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["recorded_at"],
                include=("deal", "amount"),
                name="pending_payment_queue",
            ),
        ),
    ]
