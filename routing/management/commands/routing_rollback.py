"""`manage.py routing_rollback`: every routing feature off in one audited step (docs/flags.md)."""

from django.core.management.base import BaseCommand

from accounts.audit import audit_actor, command_actor
from routing.services import RollbackResult, routing_rollback


class Command(BaseCommand):
    help = (
        "Switch every routing feature off in one audited transaction: flag routing_policies "
        "(Everyone: No), sample cost_optimization (0 %), switches intelligent_routing, "
        "intelligent_routing_fallback and intelligent_routing_monitoring (off). Prints what "
        "changed; routing_rollforward restores the states from before."
    )
    verb = "Rolled back"

    def run(self, actor: str) -> RollbackResult:
        return routing_rollback(actor_label=actor)

    def handle(self, *args, **options):
        actor = command_actor(self.__module__.rsplit(".", 1)[-1])
        with audit_actor(actor):
            result = self.run(actor)
        report(self, result, self.verb)


def report(command: BaseCommand, result: RollbackResult, verb: str) -> None:
    out = command.stdout
    if not result.changes:
        out.write(
            "Nothing to change: every routing feature is already off."
            if verb == "Rolled back"
            else "Nothing to roll forward: no rollback is in force."
        )
    else:
        out.write(command.style.SUCCESS(f"{verb}: {len(result.changes)} change(s)"))
        for change in result.changes:
            out.write(f"  {change}")
    if result.cache_error:
        command.stderr.write(
            "Saved in the database, but waffle's cache could not be cleared "
            f"({result.cache_error}); processes reading a stale cache keep the old states "
            "until it expires or is back and cleared (run the command again)."
        )
