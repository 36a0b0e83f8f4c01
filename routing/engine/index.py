"""Which policies a request can possibly match, without evaluating all of them.

A snapshot may hold a thousand active policies; evaluating each one per request would cost
milliseconds. Two indexes cut that down while giving exactly the same first match:

- per model: a policy's `model` condition (literal, $eq, $in, $ne, $nin, $regex, comparisons,
  through $and/$or) is resolved against every model in the catalogue when the snapshot is
  built, so a policy written for other models is never looked at;
- guards: most policies also require an exact value somewhere (`metadata.tenant: "acme"`,
  `caller.groups: "enterprise"`, `header.x-team: {"$in": [...]}`). Such a necessary condition
  is a *guard*; policies are filed under their guard's values, and a request only looks at
  the policies filed under its own values, plus the policies that have no guard.

Candidates are then evaluated in snapshot order, so the first match is the one a linear scan
would find. Guards are only taken where they are provably necessary; anything else (a $not,
an $or with an unguarded branch, numbers compared with header text) leaves the policy
unguarded, which costs speed, never correctness.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .conditions import MISSING, OPERATOR_TABLE, Facts, Getter, attribute, compile_conditions

ModelFilter = Callable[[str], bool]


def index_key(value: Any) -> Any:
    """The hashable key equal values share; None if the value cannot equal any literal.

    Mirrors the conditions' type-strict equality: True is not 1, but 1 is 1.0.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", value)
    if value is None:
        return ("null",)
    return None


# --- model filter ----------------------------------------------------------------------------


def model_filter(conditions: Any) -> ModelFilter | None:
    """A test on the model name that every match must pass, or None when there is none.

    Exact for the `model` attribute (always a present string), conservative elsewhere.
    """
    if not isinstance(conditions, Mapping):
        return None
    parts: list[ModelFilter] = []
    for key, value in conditions.items():
        found: ModelFilter | None = None
        if key == "model":
            found = _model_value_filter(value)
        elif key == "$and" and isinstance(value, list | tuple):
            found = _and([model_filter(item) for item in value])
        elif key == "$or" and isinstance(value, list | tuple) and value:
            branches = [model_filter(item) for item in value]
            if all(b is not None for b in branches):
                found = _or(branches)  # type: ignore[arg-type]
        if found is not None:
            parts.append(found)
    return _and(parts)


def _and(filters: list[ModelFilter | None]) -> ModelFilter | None:
    real = [f for f in filters if f is not None]
    if not real:
        return None
    if len(real) == 1:
        return real[0]
    return lambda m: all(f(m) for f in real)


def _or(filters: list[ModelFilter]) -> ModelFilter:
    return lambda m: any(f(m) for f in filters)


def _model_value_filter(value: Any) -> ModelFilter | None:
    if isinstance(value, str):
        return lambda m: m == value
    if not isinstance(value, Mapping):
        return None
    parts: list[ModelFilter | None] = []
    for op, operand in value.items():
        parts.append(_model_op_filter(op, operand))
    return _and(parts)


def _model_op_filter(op: str, operand: Any) -> ModelFilter | None:
    spec = OPERATOR_TABLE.get(op)
    if spec is None or spec.model_test is None:
        return None
    return spec.model_test(operand)


# --- guards ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyGuard:
    """The attribute's value (or, for lists, one of its elements) must be one of `keys`."""

    path: str
    keys: frozenset[Any]


@dataclass(frozen=True, slots=True)
class RangeGuard:
    """The attribute must be a number within the interval."""

    path: str
    low: float = -math.inf
    low_inclusive: bool = False
    high: float = math.inf
    high_inclusive: bool = False

    def contains(self, value: float) -> bool:
        low, high = self.low, self.high
        return (value > low or (self.low_inclusive and value == low)) and (
            value < high or (self.high_inclusive and value == high)
        )


# A policy's guard: alternatives, at least one of which every match satisfies.
Guard = tuple[KeyGuard | RangeGuard, ...]

# Lower is more selective: user-level ids beat team/metadata values beat group names beat
# token ranges beat time windows.
_KEY_RANK = {"caller.user": 0, "caller.username": 0, "caller.api_key": 0, "caller.groups": 2}
_RANGE_RANK = 3
_TIME_RANK = 4
_TIME_DOMAINS = {"hour": range(24), "weekday": range(7)}


def guard(conditions: Any) -> Guard | None:
    """The most selective necessary condition of a policy that the index can use, or None."""
    return guard_and_residual(conditions)[0]


def guard_and_residual(conditions: Any) -> tuple[Guard | None, Mapping[str, Any] | None]:
    """The guard, and the conditions left to evaluate once the index has found the policy
    through it (None: evaluate all of them).

    A guard taken from a whole top-level attribute condition (`"metadata.tier": "gold"`,
    `"input_tokens": {"$gt": 1000}`) is equivalent to it, so that condition need not be
    evaluated again; guards found inside $and/$or only narrow the search.
    """
    if not isinstance(conditions, Mapping):
        return None, None
    options: list[tuple[Guard, str | None]] = []
    for key, value in conditions.items():
        if key == "$and" and isinstance(value, list | tuple):
            options.extend((g, None) for g in (guard(item) for item in value) if g is not None)
        elif key == "$or" and isinstance(value, list | tuple) and value:
            branches = [guard(item) for item in value]
            if all(b is not None for b in branches):
                options.append((tuple(alt for b in branches for alt in b), None))  # type: ignore[union-attr]
        elif isinstance(key, str) and not key.startswith("$") and key != "model":
            found = _attribute_guard(key, value)
            if found is not None:
                options.append(((found,), key if _exact(key, value) else None))
    if not options:
        return None, None
    best, covered = min(options, key=lambda option: (_guard_score(option[0]), option[1] is None))
    if covered is None:
        return best, None
    return best, {k: v for k, v in conditions.items() if k != covered}


def _exact(path: str, value: Any) -> bool:
    """Whether the guard built from `{path: value}` holds exactly when the condition does."""
    resolved = attribute(path)
    if resolved is not None and resolved[0] in _TIME_DOMAINS:
        return True  # built by evaluating the whole condition on every possible value
    if not isinstance(value, Mapping):
        return True
    specs = [OPERATOR_TABLE.get(op) for op in value]
    if any(spec is None for spec in specs):
        return False
    if len(specs) == 1 and specs[0].equality:
        return True
    return (
        resolved is not None
        and resolved[0] == "int"
        and all(spec.low or spec.high for spec in specs)
        and all(_is_number(v) for v in value.values())
    )


def _guard_score(g: Guard) -> tuple[int, int]:
    rank = 0
    size = 0
    for alt in g:
        if isinstance(alt, RangeGuard):
            rank = max(rank, _RANGE_RANK)
            size += 1
        else:
            kind = attribute(alt.path)
            time_kind = kind is not None and kind[0] in _TIME_DOMAINS
            rank = max(rank, _TIME_RANK if time_kind else _KEY_RANK.get(alt.path, 1))
            size += len(alt.keys)
    return rank, size


def _attribute_guard(path: str, value: Any) -> KeyGuard | RangeGuard | None:
    resolved = attribute(path)
    if resolved is None:
        return None
    kind = resolved[0]
    if kind in _TIME_DOMAINS:
        return _time_guard(path, kind, value)
    if kind == "int":
        return _range_guard(path, value)
    if kind not in ("str", "strlist", "any", "header"):
        return None
    literals: list[Any] | None = None
    if not isinstance(value, Mapping):
        literals = [value]
    else:
        # The first equality operator in the table's order ($eq before $in).
        for spec in OPERATOR_TABLE.values():
            if spec.name in value:
                literals = spec.literals(value[spec.name])
                if literals is not None:
                    break
    if literals is None:
        return None
    if kind == "header" and not all(isinstance(x, str) for x in literals):
        # A number compared with a header reads the header as a number: "07" equals 7.
        return None
    keys = [index_key(x) for x in literals]
    if any(k is None for k in keys):
        return None
    return KeyGuard(path, frozenset(keys))


def _time_guard(path: str, kind: str, value: Any) -> KeyGuard | None:
    # Few possible values: run the condition itself on each and file the policy under those
    # that pass. Exact by construction, weekday names included.
    predicate, issues = compile_conditions({path: value})
    if issues or predicate(_TimeProbe(MISSING)):  # type: ignore[arg-type]
        # A condition a missing clock satisfies ($exists: false, $ne, $nin) is no guard.
        return None
    passing = [d for d in _TIME_DOMAINS[kind] if predicate(_TimeProbe(d))]  # type: ignore[arg-type]
    return KeyGuard(path, frozenset(index_key(d) for d in passing))


class _TimeProbe:
    __slots__ = ("hour", "weekday")

    def __init__(self, value: Any):
        self.hour = self.weekday = value


def _range_guard(path: str, value: Any) -> KeyGuard | RangeGuard | None:
    if not isinstance(value, Mapping):
        return KeyGuard(path, frozenset((index_key(value),))) if _is_number(value) else None
    for op, operand in value.items():
        spec = OPERATOR_TABLE.get(op)
        literals = spec.literals(operand) if spec and spec.operand == "literals" else None
        if literals is not None and all(_is_number(x) for x in literals):
            return KeyGuard(path, frozenset(index_key(x) for x in literals))
    low, low_inc, high, high_inc = -math.inf, False, math.inf, False
    bounded = False
    for op, operand in value.items():
        spec = OPERATOR_TABLE.get(op)
        if spec is None or not _is_number(operand):
            continue
        if spec.low:
            if operand > low or (operand == low and not spec.inclusive):
                low, low_inc = operand, spec.inclusive
            bounded = True
        if spec.high:
            if operand < high or (operand == high and not spec.inclusive):
                high, high_inc = operand, spec.inclusive
            bounded = True
    if not bounded:
        return None
    return RangeGuard(path, low, low_inc, high, high_inc)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# --- the per-model index ---------------------------------------------------------------------

_Entry = tuple[int, Any]  # (evaluation order, policy)


class _Ranges:
    """Range guards on one numeric attribute, grouped by interval and sorted by lower bound."""

    __slots__ = ("get", "groups", "lows")

    def __init__(self, get: Getter, items: list[tuple[RangeGuard, _Entry]]):
        # Operators reuse thresholds ("input_tokens > 100000" in many policies): one test per
        # distinct interval, not per policy.
        grouped: dict[tuple[float, bool, float, bool], list[_Entry]] = {}
        for g, entry in items:
            key = (g.low, g.low_inclusive, g.high, g.high_inclusive)
            grouped.setdefault(key, []).append(entry)
        ordered = sorted(grouped.items(), key=lambda item: item[0][0])
        self.get = get
        self.lows = [bounds[0] for bounds, _ in ordered]
        self.groups = tuple((*bounds, tuple(entries)) for bounds, entries in ordered)

    def extend_hits(self, v: float, hits: list[_Entry]) -> None:
        # Only intervals starting at or below the value can hold it.
        end = bisect_right(self.lows, v)
        for low, low_inc, high, high_inc, entries in self.groups[:end]:
            if (v > low or (low_inc and v == low)) and (v < high or (high_inc and v == high)):
                hits.extend(entries)


class PolicyIndex:
    """The policies one model's requests can match, filed by guard.

    `candidates(facts)` returns them in evaluation order; only these need evaluating.
    """

    __slots__ = ("_keys", "_ranges", "_unguarded_entries", "size", "unguarded")

    def __init__(self, entries: Iterable[tuple[int, Any, Guard | None]]):
        unguarded: list[_Entry] = []
        keys: dict[str, dict[Any, list[_Entry]]] = {}
        ranges: dict[str, list[tuple[RangeGuard, _Entry]]] = {}
        self.size = 0
        for order, policy, g in entries:
            self.size += 1
            entry = (order, policy)
            if g is None:
                unguarded.append(entry)
                continue
            for alt in g:
                if isinstance(alt, RangeGuard):
                    ranges.setdefault(alt.path, []).append((alt, entry))
                else:
                    table = keys.setdefault(alt.path, {})
                    for key in alt.keys:
                        table.setdefault(key, []).append(entry)
        self.unguarded = tuple(p for _, p in unguarded)
        self._unguarded_entries = tuple(unguarded)
        self._keys = tuple(
            (_getter(path), {k: tuple(v) for k, v in table.items()}) for path, table in keys.items()
        )
        self._ranges = tuple(_Ranges(_getter(path), items) for path, items in ranges.items())

    def candidates(self, facts: Facts) -> tuple[Any, ...] | list[Any]:
        hits: list[_Entry] = []
        for get, table in self._keys:
            value = get(facts)
            if value is MISSING:
                continue
            if value.__class__ is str:  # the common case: skip index_key()
                found = table.get(value)
                if found:
                    hits.extend(found)
            elif isinstance(value, list | tuple | frozenset | set):
                for item in value:
                    found = table.get(index_key(item))
                    if found:
                        hits.extend(found)
            else:
                key = index_key(value)
                if key is not None:
                    found = table.get(key)
                    if found:
                        hits.extend(found)
        for ranges in self._ranges:
            value = ranges.get(facts)
            if value.__class__ is int or value.__class__ is float:
                ranges.extend_hits(value, hits)
        if not hits:
            return self.unguarded
        hits.extend(self._unguarded_entries)
        # Back into evaluation order; a policy filed under several of the request's values
        # appears once.
        by_order = dict(hits)
        return [by_order[order] for order in sorted(by_order)]


def _getter(path: str) -> Getter:
    resolved = attribute(path)
    return resolved[1] if resolved is not None else _missing


def _missing(_facts: Facts) -> Any:
    return MISSING


def build_indexes(policies: Iterable[Any], models: Iterable[str]) -> dict[str, PolicyIndex]:
    """One `PolicyIndex` per model; `policies` in evaluation order, each carrying the
    `model_filter` and `guard` computed from its conditions when it was compiled."""
    ordered = list(enumerate(policies))
    return {
        model: PolicyIndex(
            (order, p, p.guard)
            for order, p in ordered
            if p.model_filter is None or p.model_filter(model)
        )
        for model in models
    }
