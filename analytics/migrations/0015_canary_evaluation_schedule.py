"""The canary evaluation's default beat schedule (analytics/schedules.py), every
CANARY_EVALUATION_INTERVAL_SECONDS."""

from django.db import migrations

from analytics.schedules import install_default_schedules


def install(apps, schema_editor):
    # Idempotent: only the rows that do not exist yet are created (the canary's).
    install_default_schedules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0014_canary_cohorts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
