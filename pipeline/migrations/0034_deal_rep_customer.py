from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0033_not_paid_edge_days_index_only"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(fields=["rep", "customer"], name="deal_rep_customer"),
        ),
    ]
