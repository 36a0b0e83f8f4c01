"""The health probes' default schedule as a django-celery-beat row (providers/schedules.py)."""

from django.db import migrations

from providers.schedules import install_default_schedules


def install(apps, schema_editor):
    install_default_schedules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0003_providermodel_supports_embeddings"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
