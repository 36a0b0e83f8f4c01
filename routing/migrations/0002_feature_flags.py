"""Create the seed's feature flags in their seed states, so `migrate` alone sets them up.

routing_policies: 25 % of users plus groups enterprise and beta-testers; cost_optimization:
10 % of requests; intelligent_routing with _fallback and _monitoring: on. Existing rows are
left as operators set them (the migration never switches a flag back on).
"""

from django.db import migrations


def create_flags(apps, schema_editor):
    from routing.flags import install_seed_flags

    install_seed_flags(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0001_initial"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_flags, migrations.RunPython.noop)]
