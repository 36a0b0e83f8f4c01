"""Save-time validation of a policy's conditions and actions, shared by admin and API.

The routing engine owns the language; this module asks it about a policy against the
providers and models that exist now, and shapes the answer as Django field errors whose
messages name the exact path (`actions.targets[2].provider: unknown provider 'opena1'`).
The engine's checks come first (their messages say what to write instead); the policy
language's JSON Schema (routing/engine/schema.py, the one the admin editor and the API
schema show) is checked too, so that nothing it refuses is ever saved.
"""

from functools import cache

from jsonschema import Draft202012Validator

from providers.models import Provider
from routing.engine import validate_actions, validate_conditions
from routing.engine.schema import actions_schema, conditions_schema
from routing.offers import catalogue_offers


@cache
def _validators() -> dict[str, Draft202012Validator]:
    checker = Draft202012Validator.FORMAT_CHECKER
    return {
        "conditions": Draft202012Validator(conditions_schema(), format_checker=checker),
        "actions": Draft202012Validator(actions_schema(), format_checker=checker),
    }


def json_path(root: str, parts) -> str:
    """`conditions.$or[1].model.$in` from jsonschema's path parts."""
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_errors(field: str, value) -> list[str]:
    """What the policy language's JSON Schema says about `value` (a resolved `conditions`
    or `actions`), one message per deepest failing path."""
    errors = sorted(_validators()[field].iter_errors(value), key=lambda e: list(e.path))
    return [f"{json_path(field, error.absolute_path)}: {error.message}" for error in errors]


def policy_errors(conditions, actions) -> dict[str, list[str]]:
    offers = catalogue_offers()
    # Every provider, with or without enabled models (an offer's provider is one of them).
    providers = set(Provider.objects.values_list("id", flat=True))
    errors: dict[str, list[str]] = {}
    for field, value, issues in (
        ("conditions", conditions, validate_conditions(conditions)),
        ("actions", actions, validate_actions(actions, offers=offers, providers=providers)),
    ):
        messages = [f"{issue.path}: {issue.message}" for issue in issues]
        if not messages:
            messages = schema_errors(field, value)
        if messages:
            errors[field] = messages
    return errors
