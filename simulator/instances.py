"""A JSON value that validates against a JSON schema: what a simulated model "answers" in JSON
mode (OpenAI json_schema, Gemini responseSchema / responseJsonSchema) and as tool arguments
(OpenAI, Anthropic - also its forced-tool JSON mode - and Gemini function calls).

Covers what structured-output and tool schemas use: type (one or a list), enum, const,
properties / required / additionalProperties, items / prefixItems / minItems / maxItems /
uniqueItems, string formats and lengths, numeric bounds and multipleOf, anyOf / oneOf / allOf,
local $ref into $defs / definitions, and Gemini's OpenAPI subset (upper-case types,
`nullable`). An object gets its required properties (all of them when none is marked
required); an enum its first value; a string "lorem" (or its format's example); a number 1;
an array its minimum number of items. The same schema always gives the same instance.
"""

from __future__ import annotations

import math
import re

_WORDS = ("lorem", "ipsum", "dolor", "amet", "consectetur", "adipiscing", "elit", "tempor")
_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00",
    "duration": "P1D",
    "email": "lorem@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/lorem",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 12


def instance_for(schema, root=None) -> object:
    """A value valid against `schema` (a dict; anything else gives an empty object)."""
    if not isinstance(schema, dict):
        return {}
    return _Builder(root if root is not None else schema).build(schema, 0, 0)


class _Builder:
    def __init__(self, root: dict):
        self.root = root

    def resolve(self, schema: dict, depth: int) -> dict:
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
            target = self.pointer(schema["$ref"])
            if target is None:
                return {}
            # Sibling keywords next to $ref apply too (JSON Schema 2019-09 and later).
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra}
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def pointer(self, ref: str):
        if not ref.startswith("#"):
            return None
        node = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def build(self, schema, depth: int, seed: int):
        schema = self.resolve(schema, depth)
        if depth > _MAX_DEPTH:
            return None
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for keyword in ("anyOf", "oneOf"):
            options = schema.get(keyword)
            if isinstance(options, list) and options:
                return self.build(self.pick(options, depth), depth + 1, seed)
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part, depth))
            return self.build(merged, depth + 1, seed)
        kind = _kind(schema)
        if kind == "object":
            return self.object(schema, depth, seed)
        if kind == "array":
            return self.array(schema, depth, seed)
        if kind == "string":
            return _string(schema, seed)
        if kind in ("integer", "number"):
            return _number(schema, kind, seed)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return {}

    def pick(self, options: list, depth: int):
        """The first option that is not only null (a nullable field still gets a value)."""
        for option in options:
            if _kind(self.resolve(option, depth)) != "null":
                return option
        return options[0]

    def object(self, schema: dict, depth: int, seed: int) -> dict:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = [k for k in schema.get("required") or [] if isinstance(k, str)]
        order = schema.get("propertyOrdering") or list(properties)
        keys = [k for k in order if k in properties] + [k for k in properties if k not in order]
        if required:
            keys = [k for k in keys if k in required] + [k for k in required if k not in keys]
        value = {}
        for index, key in enumerate(keys):
            value[key] = self.build(properties.get(key, {}), depth + 1, seed + index)
        minimum = schema.get("minProperties")
        extra = schema.get("additionalProperties", True)
        if isinstance(minimum, int) and len(value) < minimum and extra is not False:
            extra_schema = extra if isinstance(extra, dict) else {"type": "string"}
            while len(value) < minimum:
                value[f"key_{len(value)}"] = self.build(extra_schema, depth + 1, len(value))
        return value

    def array(self, schema: dict, depth: int, seed: int) -> list:
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        items = schema.get("items")
        low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = max(low, len(prefix))
        if items is False:
            count = len(prefix)
        if high is not None:
            count = min(count, high)
        values = []
        for index in range(count):
            if index < len(prefix):
                item_schema = prefix[index]
            else:
                item_schema = items if isinstance(items, dict) else {}
            values.append(self.build(item_schema, depth + 1, seed + index))
        return values


def _kind(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [str(k).lower() for k in kind]
        kind = next((k for k in names if k != "null"), "null")
    elif isinstance(kind, str):
        kind = kind.lower()  # Gemini's OpenAPI subset: STRING, OBJECT, ...
    if kind is None:
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
    return kind


def _merge(left: dict, right: dict) -> dict:
    merged = dict(left)
    for key, value in right.items():
        if key == "properties" and isinstance(value, dict):
            merged["properties"] = {**(merged.get("properties") or {}), **value}
        elif key == "required" and isinstance(value, list):
            merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *value]))
        else:
            merged[key] = value
    return merged


def _string(schema: dict, seed: int) -> str:
    value = _FORMATS.get(schema.get("format"), "lorem")
    low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    while len(value) < low:
        value += " " + _WORDS[len(value) % len(_WORDS)]
    if high is not None:
        value = value[:high]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        value = _matching(pattern, value)
    return value


def _matching(pattern: str, preferred: str) -> str:
    """`preferred` if it matches the pattern, else the first simple candidate that does."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return preferred
    candidates = [preferred, "a", "A", "0", "lorem", "LOREM", "a1", "A1", "2025-01-01", ""]
    return next((c for c in candidates if compiled.search(c)), preferred)


def _number(schema: dict, kind: str, seed: int):
    low = schema.get("minimum")
    high = schema.get("maximum")
    exclusive_low = schema.get("exclusiveMinimum")
    exclusive_high = schema.get("exclusiveMaximum")
    step = schema.get("multipleOf")
    candidate = 1.0
    if isinstance(low, int | float) and not isinstance(low, bool):
        candidate = max(candidate, float(low))
    if isinstance(exclusive_low, int | float) and not isinstance(exclusive_low, bool):
        candidate = max(candidate, float(exclusive_low) + (1 if kind == "integer" else 0.5))
    if isinstance(high, int | float) and not isinstance(high, bool):
        candidate = min(candidate, float(high))
    if isinstance(exclusive_high, int | float) and not isinstance(exclusive_high, bool):
        candidate = min(candidate, float(exclusive_high) - (1 if kind == "integer" else 0.5))
    if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
        candidate = math.ceil(candidate / step) * step
        if isinstance(high, int | float) and candidate > high:
            candidate = math.floor(high / step) * step
    if kind == "integer":
        return math.ceil(candidate) if candidate == candidate else 0
    return int(candidate) if float(candidate).is_integer() else candidate
