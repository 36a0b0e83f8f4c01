# ProviderHealthCheck moves to the providers app (it is written by the probes there): first its
# check constraint takes the name it will have there, on a real schema operation.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_latency_in_rollup"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="providerhealthcheck",
            name="analytics_providerhealthcheck_outcome_valid",
        ),
        migrations.AddConstraint(
            model_name="providerhealthcheck",
            constraint=models.CheckConstraint(
                condition=models.Q(outcome__in=["ok", "slow", "failed"]),
                name="providers_providerhealthcheck_outcome_valid",
            ),
        ),
    ]
