"""Idempotent demo data: providers and models at the simulator, policies, groups, users, a key."""

import os
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.choices import Scope
from accounts.models import ApiKey
from accounts.services import api_key_authenticate, api_key_create
from providers.demo import demo_catalogue_install
from routing.demo import demo_policies_install
from routing.flags import SEED_GROUPS, install_seed_flags

DEMO_KEY_NAME = "demo"
DEFAULT_ADMIN_PASSWORD = "admin"


class Command(BaseCommand):
    help = (
        "Install demo data (idempotent): providers pointing at the provider simulator with public "
        "list prices, example policies, groups enterprise and beta-testers, an admin user, and a "
        "demo API key, kept across runs in --key-file (a new one when that key no longer works). "
        "With DEBUG off it refuses to create the admin with the default password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default=settings.PROVIDER_SIMULATOR_URL)
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument(
            "--admin-password",
            default=os.environ.get("DEMO_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD,
            help="For a new admin user (default: DEMO_ADMIN_PASSWORD, else 'admin', which is "
            "refused when DEBUG is off).",
        )
        parser.add_argument(
            "--key-file",
            type=Path,
            default=settings.VAR_DIR / "demo-api-key",
            help="Where the demo API key is kept (mode 0600) so that it survives the next run.",
        )

    def handle(self, *args, **options):
        user_model = get_user_model()
        new_admin = not user_model.objects.filter(username=options["admin_username"]).exists()
        if new_admin and not settings.DEBUG and options["admin_password"] == DEFAULT_ADMIN_PASSWORD:
            raise CommandError(
                f"Refusing to create the admin user with the default password "
                f"'{DEFAULT_ADMIN_PASSWORD}' while DEBUG is off: pass --admin-password or set "
                "DEMO_ADMIN_PASSWORD (or run with DEBUG=true on a machine of your own)."
            )
        self.seed(**options)

    @transaction.atomic
    def seed(self, **options):
        providers = demo_catalogue_install(options["simulator_url"])
        policies = demo_policies_install()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in SEED_GROUPS}
        install_seed_flags(apps)

        admin, created = get_user_model().objects.get_or_create(
            username=options["admin_username"],
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@localhost"},
        )
        if created:
            admin.set_password(options["admin_password"])
            admin.save()
        # The demo caller is a beta tester, so the routing_policies flag is on for the demo key
        # and the tour shows policies at work (everyone else: 25 % of users, docs/flags.md).
        admin.groups.add(groups["beta-testers"])

        raw_key, kept = self.demo_key(admin, options["key_file"])

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
        how = "kept from the last run" if kept else "new"
        out.write(f"Demo API key (all scopes, {how}; in {options['key_file']}): {raw_key}")

    def demo_key(self, admin, key_file: Path) -> tuple[str, bool]:
        """The demo key from `key_file` if it still authenticates as the admin's demo key,
        else a new one (the old demo keys deleted) written there. (raw key, kept?)"""
        try:
            raw_key = key_file.read_text().strip()
        except OSError:
            raw_key = ""
        found = api_key_authenticate(raw_key) if raw_key else None
        if found is not None and found.user_id == admin.pk and found.name == DEMO_KEY_NAME:
            return raw_key, True
        ApiKey.objects.filter(user=admin, name=DEMO_KEY_NAME).delete()
        _, raw_key = api_key_create(user=admin, name=DEMO_KEY_NAME, scopes=Scope.values)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(raw_key + "\n")
        return raw_key, False
