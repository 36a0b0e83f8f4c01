from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="username of the key's owner")
        parser.add_argument("--name", required=True, help="a name for the key, unique per user")
        parser.add_argument(
            "--scopes",
            required=True,
            help="comma-separated: ai:execute,routing:view,routing:manage",
        )
        parser.add_argument("--team", default="")

    def handle(self, *args, **options):
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named {options['user']!r}.") from exc
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            api_key, raw_key = api_key_create(
                user=user, name=options["name"], scopes=scopes, team=options["team"]
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stdout.write(raw_key)
        self.stderr.write(
            f"Created key {api_key.prefix}… for {user.username} ({', '.join(scopes)})"
        )
