"""Sensitive routing data: values a policy uses but the database must not hold in clear.

A policy's `sensitive_values` (an encrypted JSON object, core/encryption.py) names them;
its `conditions` and `actions` refer to one wherever a value may appear, as
`{"$sensitive": "<name>"}`. The jsonb columns keep only the reference; the value is put in
place when the policy is validated and when the routing snapshot is compiled, in memory.

    conditions: {"metadata.customer_id": {"$in": {"$sensitive": "vip_customers"}}}
    sensitive_values: {"vip_customers": ["acme-7731", "globex-0042"]}
"""

from typing import Any

REFERENCE = "$sensitive"


def _reference_name(node) -> str | None:
    if isinstance(node, dict) and len(node) == 1 and REFERENCE in node:
        return node[REFERENCE]
    return None


def sensitive_resolve(tree: Any, values: dict) -> Any:
    """`tree` with every reference replaced by its value (unknown names are left as they are,
    for `sensitive_errors` to report)."""
    name = _reference_name(tree)
    if name is not None:
        return values[name] if isinstance(name, str) and name in values else tree
    if isinstance(tree, dict):
        return {key: sensitive_resolve(value, values) for key, value in tree.items()}
    if isinstance(tree, list):
        return [sensitive_resolve(value, values) for value in tree]
    return tree


def _references(tree: Any, path: str):
    name = _reference_name(tree)
    if name is not None:
        yield path, name
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _references(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _references(value, f"{path}[{index}]")


def sensitive_errors(conditions, actions, values) -> dict[str, list[str]]:
    """References to names `values` does not define, as field errors naming the path."""
    errors: dict[str, list[str]] = {}
    if not isinstance(values, dict):
        return {"sensitive_values": ["Must be a JSON object mapping names to values."]}
    for field, tree in (("conditions", conditions), ("actions", actions)):
        for path, name in _references(tree, field):
            if not isinstance(name, str) or name not in values:
                known = ", ".join(sorted(values)) or "none defined"
                errors.setdefault(field, []).append(
                    f"{path}: unknown sensitive value {name!r} (known: {known})"
                )
    return errors
