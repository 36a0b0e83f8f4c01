"""Save-time validation of a policy's conditions and actions, shared by admin and API.

The routing engine owns the language; this module asks it about a policy against the
providers and models that exist now, and shapes the answer as Django field errors whose
messages name the exact path (`actions.targets[2].provider: unknown provider 'opena1'`).
"""

from providers.models import Provider
from routing.engine import validate_actions, validate_conditions
from routing.offers import catalogue_offers


def policy_errors(conditions, actions) -> dict[str, list[str]]:
    offers = catalogue_offers()
    # Every provider, with or without enabled models (an offer's provider is one of them).
    providers = set(Provider.objects.values_list("id", flat=True))
    errors: dict[str, list[str]] = {}
    for field, issues in (
        ("conditions", validate_conditions(conditions)),
        ("actions", validate_actions(actions, offers=offers, providers=providers)),
    ):
        if issues:
            errors[field] = [f"{issue.path}: {issue.message}" for issue in issues]
    return errors
