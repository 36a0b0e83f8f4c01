# ProviderHealthCheck moves here from analytics (the probes write it); the table
# provider_health_checks already exists, so only the migration state changes.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0001_initial"),
        ("analytics", "0004_rename_probe_constraint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProviderHealthCheck",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("checked_at", models.DateTimeField()),
                        (
                            "outcome",
                            models.CharField(
                                choices=[
                                    ("ok", "OK"),
                                    ("slow", "Slow or rate limited"),
                                    ("failed", "Failed"),
                                ],
                                max_length=10,
                            ),
                        ),
                        (
                            "latency",
                            models.FloatField(
                                help_text="Seconds until the answer or the failure."
                            ),
                        ),
                        ("error_type", models.CharField(blank=True, default="", max_length=50)),
                        (
                            "error_message",
                            models.CharField(blank=True, default="", max_length=500),
                        ),
                        ("models_listed", models.PositiveIntegerField(default=0)),
                        ("status_before", models.CharField(max_length=20)),
                        ("status_after", models.CharField(max_length=20)),
                        (
                            "provider",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="health_checks",
                                to="providers.provider",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "provider_health_checks",
                        "ordering": ["-checked_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["provider", "-checked_at"],
                                name="provider_health_checks_recent",
                            ),
                            models.Index(fields=["checked_at"], name="provider_health_checks_time"),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(outcome__in=["ok", "slow", "failed"]),
                                name="providers_providerhealthcheck_outcome_valid",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
