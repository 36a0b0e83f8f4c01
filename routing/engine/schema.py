"""The policy language as JSON Schema (draft 2020-12), generated from the engine's own tables.

One schema for three readers: the save-time validator (routing/policy_validation.py), the
admin's structured editor (it builds its pickers from the attributes, operators and action
keys below) and the API schema (/api/schema/). Nothing here is written by hand twice: the
attributes and operators come from conditions.py's ATTRIBUTES and OPERATOR_TABLE, the action
keys, strategies, error types and capabilities from actions.py and types.py.

The schema is never stricter than the engine: every policy the engine accepts validates (a
property test checks it). The engine stays the judge of what the schema cannot say (a regular
expression that does not compile, a duplicate target, `max_backoff_ms` below `backoff_ms`),
with messages that name the path.

`sensitive=True` (the stored form, as the API and the editor see it) also admits a
`{"$sensitive": "<name>"}` reference wherever a value may stand (routing/sensitive.py).
"""

from __future__ import annotations

from typing import Any

from .actions import (
    _ACTION_KEYS,
    _CONSTRAINT_KEYS,
    _FALLBACK_KEYS,
    _RETRY_KEYS,
    _TARGET_KEYS,
    ANY_PROVIDER,
    DEFAULT_BALANCED_WEIGHTS,
    MAX_RETRY_ATTEMPTS,
    STRATEGIES,
)
from .conditions import _WEEKDAY_NAMES, ATTRIBUTES, LOGICAL, OPERATOR_TABLE
from .types import CAPABILITIES, DEFAULT_FALLBACK_ON, ERROR_TYPES, FallbackSpec, RetrySpec

_SENSITIVE = {
    "type": "object",
    "title": "sensitive value",
    "properties": {"$sensitive": {"type": "string"}},
    "required": ["$sensitive"],
    "additionalProperties": False,
}

# The literals each attribute kind compares with (conditions.py's _Compiler.literal).
_LITERAL: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "strlist": {"type": "string"},
    "caps": {"type": "string", "enum": sorted(CAPABILITIES)},
    "int": {"type": "number"},
    "bool": {"type": "boolean"},
    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
    # Names are matched without regard to case or surrounding spaces: a pattern cannot say
    # that portably, so any text is admitted and the engine names a wrong day.
    "weekday": {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 6},
            {"type": "string", "examples": sorted(_WEEKDAY_NAMES, key=_WEEKDAY_NAMES.get)},
        ]
    },
    "any": {"type": ["string", "number", "boolean", "null"]},
    "header": {"type": ["string", "number"]},
}
# Literals of $gt/$gte/$lt/$lte, where the engine admits any number (time.hour < 9.5).
_ORDERED = {
    **_LITERAL,
    "hour": {"type": "number"},
    "weekday": {"anyOf": [{"type": "number"}, {"type": "string"}]},
    "any": {"type": ["string", "number"]},
}


def _or_reference(schema: dict[str, Any], sensitive: bool) -> dict[str, Any]:
    return {"anyOf": [schema, {"$ref": "#/$defs/sensitive"}]} if sensitive else schema


def _operand(kind: str, operand: str) -> dict[str, Any]:
    if operand == "literal":
        return _LITERAL[kind]
    if operand == "literals":
        return {"type": "array", "items": _LITERAL[kind]}
    if operand == "ordered":
        return _ORDERED[kind]
    if operand == "pattern":
        return {"type": "string", "format": "regex"}
    return {"type": "boolean"}


def _operators(kind: str, sensitive: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "title": "operators",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            op.name: {"title": op.label, **_or_reference(_operand(kind, op.operand), sensitive)}
            for op in OPERATOR_TABLE.values()
            if op.kinds is None or kind in op.kinds
        },
    }


def _attribute_value(kind: str, description: str, sensitive: bool) -> dict[str, Any]:
    return {
        "description": description,
        "x-kind": kind,
        "anyOf": [
            _or_reference(_LITERAL[kind], sensitive),
            {"$ref": f"#/$defs/operators_{kind}"},
        ],
    }


def conditions_schema(*, sensitive: bool = False) -> dict[str, Any]:
    """The schema of a policy's `conditions` (docs/policies.md#conditions)."""
    condition_list = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/condition"}}
    properties: dict[str, Any] = {
        "$and": {"title": "all of", **condition_list},
        "$or": {"title": "any of", **condition_list},
        "$not": {"title": "not", "$ref": "#/$defs/condition"},
    }
    patterns: dict[str, Any] = {}
    for attribute in ATTRIBUTES.values():
        value = _attribute_value(attribute.kind, attribute.description, sensitive)
        if attribute.prefix:
            # metadata.a.b reaches into nested objects; a header's name may hold dots.
            name = r"(\.[^.]+)+" if attribute.kind == "any" else r"\..+"
            patterns[f"^{attribute.path}{name}$"] = {"x-prefix": f"{attribute.path}.", **value}
        else:
            properties[attribute.path] = value
    assert set(LOGICAL) <= set(properties)
    defs: dict[str, Any] = {
        "condition": {
            "type": "object",
            "properties": properties,
            "patternProperties": patterns,
            "additionalProperties": False,
        },
        **{
            f"operators_{kind}": _operators(kind, sensitive)
            for kind in sorted({a.kind for a in ATTRIBUTES.values()})
        },
    }
    if sensitive:
        defs["sensitive"] = _SENSITIVE
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "conditions",
        "description": "Which requests the policy applies to (docs/policies.md#conditions).",
        "$ref": "#/$defs/condition",
        "$defs": defs,
    }


def actions_schema(
    *,
    sensitive: bool = False,
    providers: list[str] | None = None,
    models: list[str] | None = None,
) -> dict[str, Any]:
    """The schema of a policy's `actions` (docs/policies.md#actions). With `providers` and
    `models` (the catalogue now) target names are offered as examples for pickers; they are
    never an enum, since a target may name a provider deleted since (docs/policies.md)."""

    def value(schema: dict[str, Any]) -> dict[str, Any]:
        return _or_reference(schema, sensitive)

    def nullable(schema: dict[str, Any]) -> dict[str, Any]:
        """null reads as "not given" for these keys: the default applies."""
        return {"anyOf": [schema, {"type": "null"}]}

    def closed(properties: dict[str, Any], keys: tuple[str, ...], **extra) -> dict[str, Any]:
        assert tuple(properties) == keys, (tuple(properties), keys)
        return {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            **extra,
        }

    positive = {"type": "number", "exclusiveMinimum": 0}
    retry, fallback = RetrySpec(), FallbackSpec()
    provider = {"type": "string", "minLength": 1, "pattern": r"\S", "title": "provider"}
    model = {"type": "string", "minLength": 1, "pattern": r"\S", "title": "model"}
    if providers is not None:
        provider["examples"] = [ANY_PROVIDER, *providers]
    if models is not None:
        model["examples"] = list(models)
    target = closed(
        {
            "provider": value(provider),
            "model": value(model),
            "weight": value({**positive, "default": 1, "title": "weight (weighted only)"}),
        },
        _TARGET_KEYS,
        required=["provider", "model"],
    )
    schema = closed(
        {
            "targets": {
                "type": "array",
                "title": "targets, in order",
                "description": "None: the requested model on every provider offering it.",
                "items": target,
            },
            "strategy": value(
                {"enum": list(STRATEGIES), "default": "priority", "title": "strategy"}
            ),
            "weights": nullable(
                closed(
                    {
                        key: value({"type": "number", "minimum": 0, "default": default})
                        for key, default in DEFAULT_BALANCED_WEIGHTS.items()
                    },
                    tuple(DEFAULT_BALANCED_WEIGHTS),
                    title="weights (balanced only)",
                )
            ),
            "fallback": nullable(
                closed(
                    {
                        "enabled": value({"type": "boolean", "default": fallback.enabled}),
                        "on": {
                            "type": "array",
                            "items": value({"enum": sorted(ERROR_TYPES)}),
                            "default": sorted(DEFAULT_FALLBACK_ON),
                        },
                    },
                    _FALLBACK_KEYS,
                    title="fallback",
                )
            ),
            "retry": nullable(
                closed(
                    {
                        "attempts": value(
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_RETRY_ATTEMPTS,
                                "default": retry.attempts,
                            }
                        ),
                        "backoff_ms": value(
                            {"type": "number", "minimum": 0, "default": retry.backoff_s * 1000}
                        ),
                        "max_backoff_ms": value(
                            {"type": "number", "minimum": 0, "default": retry.max_backoff_s * 1000}
                        ),
                        "respect_retry_after": value(
                            {"type": "boolean", "default": retry.respect_retry_after}
                        ),
                    },
                    _RETRY_KEYS,
                    title="retry (per target)",
                )
            ),
            "timeout_s": nullable(value({**positive, "title": "time budget (s)"})),
            "constraints": nullable(
                closed(
                    {
                        "max_cost_usd": nullable(value(positive)),
                        "max_latency_s": nullable(value(positive)),
                        "capabilities": {
                            "type": "array",
                            "items": value({"enum": sorted(CAPABILITIES)}),
                        },
                        "min_context_window": nullable(value({"type": "integer", "minimum": 1})),
                    },
                    _CONSTRAINT_KEYS,
                    title="constraints",
                )
            ),
        },
        _ACTION_KEYS,
        title="actions",
        description="Where matching requests go, and how (docs/policies.md#actions). Every "
        "key is optional and has a default.",
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    if sensitive:
        schema["$defs"] = {"sensitive": _SENSITIVE}
    return schema
