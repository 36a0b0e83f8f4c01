"""The policy language's JSON Schema (routing/engine/schema.py) in the API's OpenAPI document.

The engine speaks JSON Schema 2020-12; the API document is OpenAPI 3.0, whose schema dialect
is older. `openapi_components()` translates: `$defs` become components (`PolicyConditions`,
`PolicyCondition`, `PolicyOperators<Kind>`, `PolicyActions`, `PolicySensitiveValue`), type
lists become `anyOf`, `null` becomes `nullable`, numeric `exclusiveMinimum` the boolean form.
OpenAPI 3.0 has no `patternProperties`: the `metadata.<key>` / `header.<name>` attributes are
kept under the extension `x-patternProperties`, and such condition objects admit other keys.
"""

from __future__ import annotations

from typing import Any

from routing.engine.schema import actions_schema, conditions_schema

_PREFIX = "#/components/schemas/"


def _component_name(def_name: str) -> str:
    return "Policy" + "".join(part.capitalize() for part in def_name.split("_"))


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$schema":
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = _PREFIX + _component_name(value.removeprefix("#/$defs/"))
        elif key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            if len(kinds) == 1:
                out["type"] = kinds[0]
            else:
                out["anyOf"] = [{"type": k} for k in kinds]
            if "null" in value:
                out["nullable"] = True
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "examples":
            out["example"] = value[0] if value else None
        elif key == "patternProperties":
            out["x-patternProperties"] = _translate(value)
            out["additionalProperties"] = True
        elif key == "anyOf" and isinstance(value, list) and {"type": "null"} in value:
            rest = [_translate(v) for v in value if v != {"type": "null"}]
            if len(rest) == 1 and "$ref" in rest[0]:
                out["allOf"] = rest  # OpenAPI 3.0 ignores a $ref's siblings
            elif len(rest) == 1:
                out.update(rest[0])
            else:
                out["anyOf"] = rest
            out["nullable"] = True
        elif key == "$defs":
            continue
        else:
            out[key] = _translate(value)
    if out.get("additionalProperties") is False and "x-patternProperties" in node:
        out["additionalProperties"] = True
    return out


def openapi_components() -> dict[str, dict[str, Any]]:
    """Component schemas for the API document: the stored form (sensitive references in)."""
    components: dict[str, dict[str, Any]] = {}
    for top_name, schema in (
        ("PolicyConditions", conditions_schema(sensitive=True)),
        ("PolicyActions", actions_schema(sensitive=True)),
    ):
        for def_name, definition in schema.get("$defs", {}).items():
            components[_component_name(def_name)] = _translate(definition)
        components[top_name] = _translate(schema)
    return components


def add_policy_components(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS): the components the
    policy serializer's `conditions` and `actions` refer to."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components())
    return result
