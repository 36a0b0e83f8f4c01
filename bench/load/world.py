"""The load scenarios' data: the demo catalogue and policies on the simulator, the seed's
flags, and a caller whose key has ai:execute and routing:view and no rate limits (a thousand
users behind one key would pass the default 1,000 requests a minute).

    DATABASE_URL=... python -m bench.load.world http://127.0.0.1:9100

Prints the new API key on stdout. Run against a freshly migrated database.
"""

from __future__ import annotations

import os
import sys


def world_install(simulator_url: str) -> str:
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from accounts.services import api_key_create
    from providers.demo import demo_catalogue_install
    from routing.demo import demo_policies_install
    from routing.flags import install_seed_flags

    install_seed_flags(apps)
    demo_catalogue_install(simulator_url)
    demo_policies_install()
    user = get_user_model().objects.create_user("load", password=None)
    user.groups.add(Group.objects.get_or_create(name="beta-testers")[0])
    _, raw_key = api_key_create(
        user=user,
        name="load scenarios",
        scopes=["ai:execute", "routing:view"],
        rate_limit_per_minute=0,
        rate_limit_per_hour=0,
    )
    return raw_key


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")
    import django

    django.setup()
    print(world_install(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
