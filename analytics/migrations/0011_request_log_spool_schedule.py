"""The request-log spool's shipping task as a django-celery-beat row (analytics/schedules.py:
it installs only the tasks that are missing)."""

from django.db import migrations

from analytics.schedules import install_default_schedules


def install(apps, schema_editor):
    install_default_schedules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0010_request_log_history_references"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
