"""Idempotent demo data: providers and models at the simulator, policies, groups, users, a key."""

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Scope
from accounts.models import ApiKey
from accounts.services import api_key_create
from providers.demo import demo_catalogue_install
from routing.demo import demo_policies_install
from routing.flags import SEED_GROUPS, install_seed_flags

DEMO_KEY_NAME = "demo"


class Command(BaseCommand):
    help = (
        "Install demo data (idempotent): providers pointing at the provider simulator with public "
        "list prices, example policies, groups enterprise and beta-testers, an admin user, and a "
        "fresh demo API key (the previous demo key is replaced)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default=settings.PROVIDER_SIMULATOR_URL)
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", default="admin")

    @transaction.atomic
    def handle(self, *args, **options):
        providers = demo_catalogue_install(options["simulator_url"])
        policies = demo_policies_install()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in SEED_GROUPS}
        install_seed_flags(apps)

        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username=options["admin_username"],
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@localhost"},
        )
        if created:
            admin.set_password(options["admin_password"])
            admin.save()
        # The demo caller is a beta tester, so the routing_policies flag is on for the demo key
        # and the tour shows policies at work (everyone else: 25 % of users, docs/flags.md).
        admin.groups.add(groups["beta-testers"])

        ApiKey.objects.filter(user=admin, name=DEMO_KEY_NAME).delete()
        _, raw_key = api_key_create(user=admin, name=DEMO_KEY_NAME, scopes=Scope.values)

        out = self.stdout
        out.write(
            self.style.SUCCESS(
                f"Demo data ready: {len(providers)} providers, {len(policies)} example policies, "
                f"groups {', '.join(SEED_GROUPS)}."
            )
        )
        if created:
            out.write(
                f"Admin login: {admin.username} / {options['admin_password']} (local use only)"
            )
        else:
            out.write(f"Admin login: {admin.username} (existing user, password unchanged)")
        out.write(f"Demo API key (all scopes, shown once): {raw_key}")
