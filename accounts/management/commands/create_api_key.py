from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.audit import audit_actor, command_actor
from accounts.choices import BudgetPeriod
from accounts.services import api_key_create


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise CommandError(f"Not a number: {value!r}") from exc


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
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument(
            "--rate-limit-per-minute",
            type=int,
            default=None,
            help="requests per minute (default: RATE_LIMIT_PER_MINUTE; 0: no limit)",
        )
        parser.add_argument(
            "--rate-limit-per-hour",
            type=int,
            default=None,
            help="requests per hour (default: RATE_LIMIT_PER_HOUR; 0: no limit)",
        )
        parser.add_argument("--tokens-per-minute", type=int, default=None)
        parser.add_argument("--budget-usd", default=None, help="spend allowed per period (USD)")
        parser.add_argument(
            "--budget-period", choices=BudgetPeriod.values, default=BudgetPeriod.MONTH
        )

    def handle(self, *args, **options):
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named {options['user']!r}.") from exc
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        days = options["expires_in_days"]
        try:
            with audit_actor(command_actor("create_api_key")):
                api_key, raw_key = api_key_create(
                    user=user,
                    name=options["name"],
                    scopes=scopes,
                    team=options["team"],
                    expires_at=timezone.now() + timedelta(days=days) if days else None,
                    rate_limit_per_minute=options["rate_limit_per_minute"],
                    rate_limit_per_hour=options["rate_limit_per_hour"],
                    tokens_per_minute=options["tokens_per_minute"],
                    budget_usd=_decimal(options["budget_usd"]) if options["budget_usd"] else None,
                    budget_period=options["budget_period"],
                )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stdout.write(raw_key)
        self.stderr.write(
            f"Created key {api_key.prefix}… for {user.username} ({', '.join(scopes)})"
        )
