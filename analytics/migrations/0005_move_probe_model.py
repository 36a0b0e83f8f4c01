# ProviderHealthCheck now belongs to providers (providers/migrations/0002); the table stays.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_rename_probe_constraint"),
        ("providers", "0002_providerhealthcheck"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ProviderHealthCheck")],
            database_operations=[],
        ),
    ]
