"""The analytics jobs' default schedules as django-celery-beat rows (analytics/schedules.py)."""

from django.db import migrations

from analytics.schedules import install_default_schedules


def install(apps, schema_editor):
    install_default_schedules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0006_usage_token_parts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
