"""The providers' default schedules as django-celery-beat rows (providers/schedules.py)."""

from django.db import migrations

from providers.schedules import install_default_schedules


def install(apps, schema_editor):
    install_default_schedules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0004_model_price_rules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
