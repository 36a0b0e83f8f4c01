"""`manage.py routing_rollforward`: restore the routing features' states from before the last
rollback (docs/flags.md)."""

from routing.services import RollbackResult, routing_rollforward

from .routing_rollback import Command as RollbackCommand


class Command(RollbackCommand):
    help = (
        "Restore the flag, sample and switch states from before the last routing_rollback, in "
        "one audited transaction. Prints what changed."
    )
    verb = "Rolled forward"

    def run(self, actor: str) -> RollbackResult:
        return routing_rollforward(actor_label=actor)
